/* nabla train's stop signals (cli/train.h). The flag is the tool's, not the library's: the
 * trainer polls it through nb_train_callbacks.interrupted. */
#include "train.h"

#include <signal.h>
#include <string.h>

/* SIGINT (Ctrl-C) and SIGTERM (what schedulers send before they kill, and what mpirun sends
 * every rank when it is interrupted): the first asks training to stop between two steps and
 * write the checkpoint; a second ends the process at once, as without a handler. */
static volatile sig_atomic_t stop_signal;
static void on_stop_signal(int sig)
{
    if (stop_signal) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}
int train_interrupted(void *user) { (void)user; return stop_signal != 0; }

void train_catch_stop_signals(int catch)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = catch ? on_stop_signal : SIG_DFL;
    sa.sa_flags = SA_RESTART; /* a write or fsync under way completes */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int train_stop_signal(void) { return stop_signal; }
