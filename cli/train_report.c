/* What nabla train reports (cli/train.h): the progress bar, each epoch's line, --log and the
 * checkpoint at each epoch's end, and the --json summary. Under mpirun rank 0 alone prints and
 * writes. */
#include "cli.h"
#include "train.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void train_progress(void *user, int epoch, int64_t done, int64_t total, double loss, double secs)
{
    train_run *r = user;
    if (r->quiet || !r->tty)
        return;
    static int64_t last;
    if (done != total && done - last < total / 50 && done > last)
        return;
    last = done;
    int width = 30, fill = (int)(width * done / total);
    double rate = (double)done / (secs > 0 ? secs : 1e-9);
    fprintf(stderr, "\repoch %d [%.*s%*s] %3d%% loss %.4f  %.0f samples/s  ETA %.0fs ", epoch,
            fill, "==============================", width - fill, "", (int)(100 * done / total),
            loss, rate, (double)(total - done) / rate);
    if (done == total)
        fprintf(stderr, "\r%*s\r", 100, "");
}

/* Under Open MPI, Ctrl-C or SIGTERM on mpirun reaches the ranks as SIGTERM, and SIGKILL
 * follows odls_base_sigkill_timeout seconds later (1 by default; mpirun passes a --mca value
 * on in the environment): a checkpoint that takes more than half of that to write could be
 * cut off on such a stop (the previous one would stay). Said once, while there is time. */
static void note_slow_checkpoint(train_run *r, double seconds)
{
    if (!r->dist || r->noted_slow || !getenv("OMPI_COMM_WORLD_SIZE"))
        return;
    const char *grace_text = getenv("OMPI_MCA_odls_base_sigkill_timeout");
    double grace = grace_text && atof(grace_text) > 0 ? atof(grace_text) : 1;
    if (seconds <= grace / 2)
        return;
    r->noted_slow = 1;
    fprintf(stderr, "nabla train: note: writing the checkpoint %s took %.2g s; a Ctrl-C or "
            "SIGTERM on mpirun leaves the ranks %g s to write it before mpirun kills them: "
            "start mpirun with --mca odls_base_sigkill_timeout %d to stop cleanly that way\n",
            r->checkpoint, seconds, grace, (int)ceil(4 * seconds) + 1);
}

int train_epoch_end(void *user, const nb_epoch_stats *s)
{
    train_run *r = user;
    r->last = *s;
    if (r->plot && plot_history_add(&r->history, s, &r->fail_err)) {
        r->failed = 1;
        return 1;
    }
    if (!r->quiet) {
        fprintf(stderr, "epoch %d/%d  loss %.4f", s->epoch, s->epochs, s->train_loss);
        if (!isnan(s->train_accuracy))
            fprintf(stderr, "  acc %.2f%%", 100 * s->train_accuracy);
        if (!isnan(s->val_loss))
            fprintf(stderr, "  val loss %.4f", s->val_loss);
        if (!isnan(s->val_accuracy))
            fprintf(stderr, "  val acc %.2f%%", 100 * s->val_accuracy);
        fprintf(stderr, "  lr %.3g  %.1fs  %.0f samples/s%s\n", s->lr, s->seconds,
                s->samples_per_second, r->tracking && s->improved ? "  (best)" : "");
        if (s->stopping)
            fprintf(stderr, "early stop: no better validation metric for %d epochs since "
                    "epoch %d\n", s->epoch - s->best_epoch, s->best_epoch);
    }
    if (r->log) {
        errno = 0;
        if (fprintf(r->log, "%d,%lld,%.9g,%.6f,%.6f,%.9g,%.6f,%.6f,%.1f\n", s->epoch,
                    (long long)s->step, s->lr, s->train_loss, s->train_accuracy, s->val_loss,
                    s->val_accuracy, s->seconds, s->samples_per_second) < 0 ||
            fflush(r->log) != 0) {
            nb_error_set(&r->fail_err, NB_EIO, "%s: writing epoch %d's line failed: %s",
                         r->log_path, s->epoch, errno ? strerror(errno) : "write error");
            r->failed = 1;
            return 1;
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (r->checkpoint && nb_trainer_save_checkpoint(r->trainer, r->checkpoint, &r->fail_err)) {
        r->failed = 1;
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (r->checkpoint)
        note_slow_checkpoint(r, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec));
    return 0;
}

/* Under mpirun every rank ends an epoch here (rank 0 writing, the others quiet), with the
 * all-reduce time of the epoch. The trainer then checks the replicas and makes a stop the
 * ranks' common decision (nb_trainer_set_dist). */
int train_epoch_end_dist(void *user, const nb_epoch_stats *s)
{
    train_run *r = user;
    int stop = train_epoch_end(user, s);
    nb_dist_stats now;
    nb_dist_get_stats(r->dist, &now);
    int64_t calls = now.allreduces - r->comm.allreduces;
    if (!r->quiet)
        fprintf(stderr, "  %d rank%s: %.2fs (%.1f%%) in %lld gradient all-reduces of %.2f MB\n",
                nb_dist_size(r->dist), nb_dist_size(r->dist) > 1 ? "s" : "",
                now.seconds - r->comm.seconds,
                100 * (now.seconds - r->comm.seconds) / s->seconds, (long long)calls,
                calls ? (now.bytes - r->comm.bytes) / (double)calls / 1e6 : 0.0);
    r->comm_epoch = now.seconds - r->comm.seconds;
    r->comm = now;
    return stop;
}

/* Reports an unwritable output before any training time is spent. */
int train_check_writable(const char *path, nb_error *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        nb_error_set(err, NB_EIO, "%s: is a directory; expected a file path", path);
        return 0;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.probe.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        nb_error_set(err, NB_EIO, "%s: cannot write here: %s", path, strerror(errno));
        return 0;
    }
    int closed = close(fd) == 0, e = errno;
    unlink(tmp);
    if (!closed) {
        nb_error_set(err, NB_EIO, "%s: cannot write here: %s", path, strerror(e));
        return 0;
    }
    return 1;
}

void train_print_json(const train_summary *s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", s->o->output);
    cJSON_AddStringToObject(j, "data", s->o->data);
    cJSON_AddNumberToObject(j, "epochs", nb_trainer_epoch(s->trainer));
    if (s->run->last.epoch > 0) { /* figures of the last epoch this run trained */
        cJSON_AddNumberToObject(j, "steps", (double)s->run->last.step);
        cJSON_AddNumberToObject(j, "train_loss", s->run->last.train_loss);
        if (!isnan(s->run->last.train_accuracy)) /* a regression has none */
            cJSON_AddNumberToObject(j, "train_accuracy", s->run->last.train_accuracy);
    }
    if (s->run->last.epoch > 0 && !isnan(s->run->last.val_loss)) {
        cJSON_AddNumberToObject(j, "val_loss", s->run->last.val_loss);
        if (!isnan(s->run->last.val_accuracy))
            cJSON_AddNumberToObject(j, "val_accuracy", s->run->last.val_accuracy);
    }
    if (nb_node_op(nb_model_graph(s->model), nb_model_loss(s->model)) == NB_OP_CROSS_ENTROPY) {
        /* the training loss includes it; written as the decimal given (0.1, not the float's
         * 0.100000001…) */
        char eps[32];
        snprintf(eps, sizeof eps, "%.7g",
                 (double)nb_cross_entropy_smoothing(nb_model_graph(s->model),
                                                    nb_model_loss(s->model)));
        cJSON_AddNumberToObject(j, "label_smoothing", strtod(eps, NULL));
    }
    if (s->run->tracking) {
        cJSON_AddStringToObject(j, "keep", s->o->cfg.keep == NB_KEEP_BEST ? "best" : "last");
        cJSON_AddStringToObject(j, "monitor", s->o->cfg.monitor == NB_MONITOR_VAL_ACCURACY
                                                  ? "val_accuracy" : "val_loss");
        cJSON_AddNumberToObject(j, "best_epoch", s->best_epoch);
        if (s->best_epoch)
            cJSON_AddNumberToObject(j, "best_metric", s->best_metric);
        cJSON_AddNumberToObject(j, "saved_epoch", s->o->cfg.keep == NB_KEEP_BEST && s->best_epoch
                                                      ? s->best_epoch : nb_trainer_epoch(s->trainer));
        cJSON_AddBoolToObject(j, "stopped_early", nb_trainer_stopped_early(s->trainer));
    }
    if (s->test_count) {
        cJSON_AddNumberToObject(j, "test_loss", s->test_loss);
        if (s->test_metrics->targets) {
            cJSON_AddNumberToObject(j, "test_mse", s->test_metrics->mse_mean);
            cJSON_AddNumberToObject(j, "test_rmse", s->test_metrics->rmse_mean);
            cJSON_AddNumberToObject(j, "test_mae", s->test_metrics->mae_mean);
            cJSON_AddNumberToObject(j, "test_r2", s->test_metrics->r2_mean);
        } else
            cJSON_AddNumberToObject(j, "test_accuracy", s->test_accuracy);
    }
    if (s->run->last.epoch > 0) {
        cJSON_AddNumberToObject(j, "samples_per_second", s->run->last.samples_per_second);
        cJSON_AddNumberToObject(j, "seconds_last_epoch", s->run->last.seconds);
    }
    cJSON_AddStringToObject(j, "gemm", nb_gemm_name(s->gemm));
    cJSON_AddStringToObject(j, "precision", nb_precision_name(s->used));
    if (s->used == NB_PRECISION_BF16) {
        char kernels[512];
        cJSON_AddStringToObject(j, "kernels", nb_graph_kernels(nb_model_graph(s->model), kernels,
                                                               sizeof kernels));
    }
    if (s->dist) {
        nb_dist_stats c;
        nb_dist_get_stats(s->dist, &c);
        cJSON_AddNumberToObject(j, "ranks", nb_dist_size(s->dist));
        cJSON_AddNumberToObject(j, "threads_per_rank", s->threads);
        cJSON_AddNumberToObject(j, "allreduces", (double)c.allreduces);
        cJSON_AddNumberToObject(j, "allreduce_bytes", c.allreduces ? c.bytes / (double)c.allreduces : 0);
        cJSON_AddNumberToObject(j, "allreduce_seconds", c.seconds);
        cJSON_AddNumberToObject(j, "allreduce_seconds_last_epoch", s->run->comm_epoch);
    }
    char *text = cJSON_PrintUnformatted(j);
    puts(text ? text : "{}");
    free(text);
    cJSON_Delete(j);
}
