/* nabla train MODEL: minibatch training with the lecture's practical tricks (§5) — the run,
 * from the set-up (outputs claimed, model, data, trainer, --resume, the MPI job) through
 * nb_trainer_run to its outcome (saved model, signal, NaN, failure). The options are parsed in
 * train_options.c, the reports written in train_report.c (cli/train.h). */
#include "cli.h"
#include "plot.h"
#include "train.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_train(int argc, char **argv)
{
    train_options o;
    int parsed = train_parse_options(argc, argv, &o);
    if (parsed >= 0)
        return parsed;
    nb_precision used = NB_PRECISION_FP32;
    /* From here a signal asks the run to stop: during the set-up, before the first step.
     * Under mpirun, Ctrl-C makes mpirun send every rank SIGTERM (and SIGKILL a second later,
     * mpirun's odls_base_sigkill_timeout); the ranks agree to stop before the same step. */
    train_catch_stop_signals(1);
    nb_error err = {0};
    int status = 1;
    /* Under mpirun (and only then: a plain run never initialises MPI), join the job. */
    nb_dist *dist = NULL;
    int ranks = nb_dist_launched(), root = 1;
    char who[64] = "train"; /* "train [rank 3 of 4]" in error messages of ranks other than 0 */
    /* Under MPI, every rank ends through one agreement on the outcome (nb_dist_agree), met at
     * the same point by all: before training (a rank that failed to set up meets the others
     * there, and none trains), then at the end. A failure inside a step seen by one rank
     * alone leaves the others waiting in a collective: only then is the job aborted. */
    int skip_agree = 0, need_abort = 0;
    if (ranks > 1 || (ranks == 1 && nb_dist_available())) {
        if (!(dist = nb_dist_new(&err)))
            return cli_fail("train", &err);
        if ((root = nb_dist_rank(dist) == 0) == 0) {
            snprintf(who, sizeof who, "train [rank %d of %d]", nb_dist_rank(dist),
                     nb_dist_size(dist));
            o.quiet = 1; /* rank 0 alone prints and writes: the others open no file */
            o.json = 0;
            o.log_path = NULL;
            o.plot = NULL;
        }
        if (!o.threads)
            o.threads = nb_dist_threads(dist);
    }
    nb_dataset train = {0}, val = {0}, test = {0}, all = {0};
    nb_metrics test_metrics = {0}; /* regression's test figures, in the targets' units */
    nb_gemm *gemm = NULL;
    nb_model *m = NULL;
    nb_trainer *t = NULL;
    train_run r = {.tty = isatty(2), .quiet = o.quiet, .checkpoint = root ? o.checkpoint : NULL,
             .plot = o.plot, .dist = dist, .log_path = o.log_path,
             .tracking = o.cfg.keep == NB_KEEP_BEST || o.cfg.patience > 0};
    const char *classes = NULL, *ignored;
    cli_outputs claimed = {0};

    /* rank 0 writes: its outputs are distinct, none is an input, and no other nabla process
     * is writing them */
    cli_data_source sources[3];
    cli_data_files(o.data, &sources[0]);
    cli_data_files(o.val_spec ? o.val_spec : "", &sources[1]);
    cli_data_files(o.test_spec ? o.test_spec : "", &sources[2]);
    const char *outs[] = {o.output, o.checkpoint, o.log_path, o.plot};
    const char *out_names[] = {"-o", "--checkpoint", "--log", "--plot"};
    const char *ins[] = {cli_is_model_file(o.model_arg) ? o.model_arg : NULL, o.init_file,
                         sources[0].path[0][0] ? sources[0].path[0] : NULL,
                         sources[0].path[1][0] ? sources[0].path[1] : NULL,
                         sources[1].path[0][0] ? sources[1].path[0] : NULL,
                         sources[1].path[1][0] ? sources[1].path[1] : NULL,
                         sources[2].path[0][0] ? sources[2].path[0] : NULL,
                         sources[2].path[1][0] ? sources[2].path[1] : NULL};
    if (root && cli_outputs_claim(&claimed, outs, out_names, 4, ins, 8, &err))
        goto done;
    if (root && (!train_check_writable(o.output, &err) || (o.checkpoint && !train_check_writable(o.checkpoint, &err)) ||
                 (o.log_path && !train_check_writable(o.log_path, &err))))
        goto done;
    if (o.plot && (plot_check(&err) || !train_check_writable(o.plot, &err)))
        goto done;
    if (!(gemm = cli_gemm(o.gemm_name, o.threads, &err)))
        goto done;
    /* The model first: it says whether the data's target columns are classes or values. */
    if (!(m = cli_open_model_loss(o.model_arg, o.loss, o.cfg.seed, gemm, &err)))
        goto done;
    if (nb_model_targets(m) >= 0 && o.cfg.monitor == NB_MONITOR_VAL_ACCURACY) {
        nb_error_set(&err, NB_EINVAL, "--keep-metric accuracy: %s is a regression model, which "
                     "has no accuracy; keep the best validation loss (--keep-metric loss)",
                     o.model_arg);
        goto done;
    }
    if (cli_load_data_for(o.data, &all, &classes, m, &err) ||
        (!cli_is_model_file(o.model_arg) && cli_model_take_names(m, &all, classes, &err)) ||
        cli_check_targets(o.data, &all, m, &err))
        goto done;
    if (o.val_split > 0) {
        int64_t samples = all.count;
        if (nb_dataset_split(&all, o.val_split, o.cfg.seed, &train, &val, &err))
            goto done;
        if (train.count == 0 || val.count == 0) {
            nb_error_set(&err, NB_EINVAL, "--val-split %g of %s's %lld samples leaves %s",
                         o.val_split, o.data, (long long)samples,
                         train.count ? "no validation samples" : "no training samples");
            goto done;
        }
    } else {
        train = all;
        memset(&all, 0, sizeof all);
    }
    if (o.val_spec && (cli_load_data_for(o.val_spec, &val, &ignored, m, &err) ||
                     cli_check_targets(o.val_spec, &val, m, &err)))
        goto done;
    if (o.test_spec && (cli_load_data_for(o.test_spec, &test, &ignored, m, &err) ||
                      cli_check_targets(o.test_spec, &test, m, &err)))
        goto done;
    if (!cli_is_model_file(o.model_arg)) {
        nb_rng rng;
        nb_rng_seed(&rng, o.cfg.seed ^ 0x1417ull);
        nb_graph_init_params(nb_model_graph(m), (nb_init_kind)o.init_scheme, &rng);
        nb_norm norm = {0};
        if (o.norm_mode != NB_NORM_NONE && nb_norm_fit(&norm, &train, (nb_norm_mode)o.norm_mode, 1e-5f, &err))
            goto done;
        nb_model_set_norm(m, &norm);
        if (nb_model_targets(m) >= 0 && o.target_norm != NB_NORM_NONE) {
            if (nb_norm_fit_targets(&norm, &train, (nb_norm_mode)o.target_norm, &err))
                goto done;
            nb_model_set_target_norm(m, &norm);
        }
    }
    if (o.init_file && nb_model_load_weights(m, o.init_file, &err))
        goto done;
    /* every data set is checked now, naming what the user wrote; the test set not only
     * after the whole run */
    if (nb_model_check_data(m, &train, o.data, &err) ||
        (o.val_spec && nb_model_check_data(m, &val, o.val_spec, &err)) ||
        (o.test_spec && nb_model_check_data(m, &test, o.test_spec, &err)))
        goto done;
    if (o.test_spec && !test.labels && nb_model_targets(m) < 0) {
        nb_error_set(&err, NB_EINVAL, "--test %s: no labels; the test accuracy needs them",
                     o.test_spec);
        goto done;
    }
    if (cli_set_precision(who, nb_model_graph(m), o.precision, &used, &err))
        goto done;
    if (!(t = nb_trainer_new(m, &train, val.count ? &val : NULL, &o.cfg, &err)))
        goto done;
    r.trainer = t;
    r.model = m;
    if (root && o.cfg.optim.lr == 0)
        fprintf(stderr, "nabla train: note: --lr 0: the weights will not change\n");
    if (o.resume) {
        if (access(o.checkpoint, R_OK) != 0) {
            nb_error_set(&err, NB_EIO, "--resume: %s: %s", o.checkpoint, strerror(errno));
            goto done;
        }
        if (nb_trainer_resume(t, o.checkpoint, &err))
            goto done;
        if (!o.quiet)
            fprintf(stderr, "resuming from %s after epoch %d\n", o.checkpoint, nb_trainer_epoch(t));
        if (root && nb_trainer_resume_changes(t)[0])
            fprintf(stderr, "nabla train: note: --resume with other settings than the "
                    "checkpoint's: %s\n", nb_trainer_resume_changes(t));
        /* the curves show the whole run: the epochs before the stop come from the log */
        if (o.plot && o.log_path && access(o.log_path, R_OK) == 0 &&
            plot_history_read_log(&r.history, o.log_path, nb_trainer_epoch(t), &err))
            goto done;
    }
    if (dist) {
        if (nb_trainer_set_dist(t, dist, &err))
            goto done;
    }
    if (o.log_path &&
        !(r.log = train_log_open(o.log_path, o.resume ? nb_trainer_epoch(t) : -1, &err)))
        goto done;
    if (dist) {
        int first;
        if (nb_dist_agree(dist, 0, &first)) { /* another rank failed to set up: it reports */
            status = 1;
            skip_agree = 1; /* that was the agreement */
            goto done;
        }
    }
    /* the smoothing in effect: --label-smoothing's, or the description's own */
    float smoothing = nb_cross_entropy_smoothing(nb_model_graph(m), nb_model_loss(m));
    char smoothing_note[64] = "";
    if (smoothing > 0)
        snprintf(smoothing_note, sizeof smoothing_note, ", label smoothing %g", (double)smoothing);
    if (!o.quiet)
        fprintf(stderr, "training %s on %s: %lld samples, %lld parameters, batch %lld, %s%s, gemm %s%s\n",
                o.model_arg, o.data, (long long)train.count,
                (long long)nb_graph_param_floats(nb_model_graph(m)), (long long)(o.cfg.batch ? o.cfg.batch : train.count),
                train_optimizer_name(o.cfg.optim.kind), smoothing_note, nb_gemm_name(gemm),
                used == NB_PRECISION_BF16 ? ", precision bf16" : "");
    if (dist && !o.quiet)
        fprintf(stderr, "distributed: %d ranks (%d on this host, %d threads each), each batch "
                "split into shares of about %lld rows\n", nb_dist_size(dist),
                nb_dist_local_size(dist), o.threads,
                (long long)((o.cfg.batch ? o.cfg.batch : train.count) / nb_dist_size(dist)));
    nb_train_callbacks cb = {.user = &r, .progress = train_progress,
                             .epoch_end = dist ? train_epoch_end_dist : train_epoch_end,
                             .interrupted = train_interrupted};
    nb_status s = nb_trainer_run(t, &cb, &err);
    train_catch_stop_signals(0);
    if (s == NB_EINTR) {
        /* the trainer stopped between two steps (every rank at the same one): save exactly
         * that state, and exit with the signal's conventional status (130, 143) */
        /* under MPI the signal may have reached another rank alone: name the one any rank
         * got (SIGTERM before SIGINT), so every rank and the message agree */
        int sig = nb_dist_agree(dist, train_stop_signal() ? train_stop_signal() : SIGINT, NULL);
        const char *name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
        if (!root) {
            err.msg[0] = 0;
        } else if (!o.checkpoint) {
            fprintf(stderr, "\nnabla train: %s: %s; no checkpoint written (--checkpoint none)\n",
                    name, err.msg);
            err.msg[0] = 0;
        } else {
            char where[sizeof err.msg];
            snprintf(where, sizeof where, "%s", err.msg);
            if (nb_trainer_save_checkpoint(t, o.checkpoint, &err))
                goto done;
            fprintf(stderr, "\nnabla train: %s: %s; saved the checkpoint %s — continue with "
                    "--resume\n", name, where, o.checkpoint);
            err.msg[0] = 0;
        }
        status = 128 + sig;
        goto done;
    }
    if (s == NB_ENUMERIC) {
        /* keep the last good model rather than nothing — but never overwrite a file with
         * weights no step has shown to give a finite loss */
        nb_error save_err = {0};
        if (root) { /* every rank stopped at the same step (the all-reduce carried the NaN) */
            cli_fail("train", &err);
            if (!nb_trainer_weights_proven(t))
                fprintf(stderr, "nabla train: %s left as it was\n", o.output);
            else if (nb_model_save(m, o.output, &save_err) == NB_OK)
                fprintf(stderr, "nabla train: saved the last good weights to %s\n", o.output);
            else
                cli_fail("train", &save_err);
        }
        status = 1;
        err.msg[0] = 0;
        goto done;
    }
    if (!s && r.failed) { /* an epoch's file could not be written: stopped, not finished */
        nb_error_set(&err, r.fail_err.code, "%s; training stopped at the end of epoch %d of %d, %s left as it "
                     "was", r.fail_err.msg, nb_trainer_epoch(t), o.cfg.epochs, o.output);
        goto done;
    }
    if (s) {
        /* a failure every rank returned (the replicas differ) meets the agreement at the end;
         * one this rank may have met alone leaves the others waiting: the job is aborted */
        skip_agree = need_abort = dist && !nb_trainer_dist_shared(s);
        goto done;
    }
    if (root && nb_model_save(m, o.output, &err))
        goto done;
    double test_loss = NAN, test_acc = NAN;
    if (root && test.count && nb_model_targets(m) >= 0 &&
        nb_metrics_compute(m, &test, 0, &test_metrics, &err))
        goto done;
    if (root && test.count && nb_evaluate(m, &test, &test_loss, &test_acc, NULL, &err))
        goto done;
    if (o.plot) {
        char title[512];
        snprintf(title, sizeof title, "nabla train %s on %s", o.model_arg, o.data);
        if (plot_training_curves(o.plot, title, &r.history, test_loss, test_acc, &err))
            goto done;
        if (!o.quiet)
            fprintf(stderr, "training curves: %s\n", o.plot);
    }
    double best_metric;
    int best_epoch = nb_trainer_best_epoch(t, &best_metric);
    const char *metric_name = o.cfg.monitor == NB_MONITOR_VAL_ACCURACY ? "val accuracy" : "val loss";
    if (!o.quiet && o.cfg.keep == NB_KEEP_BEST && best_epoch)
        fprintf(stderr, "kept epoch %d of %d, the best by %s (%.6g)\n", best_epoch,
                nb_trainer_epoch(t), metric_name, best_metric);
    if (!o.quiet) {
        fprintf(stderr, "saved %s", o.output);
        if (test.count && test_metrics.targets)
            fprintf(stderr, "; test RMSE %.6g, R^2 %.6f (means over %lld target%s) on %lld "
                    "samples", test_metrics.rmse_mean, test_metrics.r2_mean,
                    (long long)test_metrics.targets, test_metrics.targets > 1 ? "s" : "",
                    (long long)test.count);
        else if (test.count)
            fprintf(stderr, "; test loss %.4f, test accuracy %.2f%% on %lld samples", test_loss,
                    100 * test_acc, (long long)test.count);
        fprintf(stderr, "\n");
    }
    if (o.json) {
        train_summary sum = {.o = &o, .run = &r, .trainer = t, .model = m, .gemm = gemm,
                             .used = used, .test_count = test.count, .test_loss = test_loss,
                             .test_accuracy = test_acc, .test_metrics = &test_metrics,
                             .best_epoch = best_epoch, .best_metric = best_metric, .dist = dist,
                             .threads = o.threads};
        train_print_json(&sum);
    }
    status = 0;
done:;
    int mine = status;
    if (dist && !skip_agree) {
        /* a failure before training meets the other ranks' agreement before training; after
         * it, this is the agreement at the end. The lowest failing rank alone reports. */
        int first, all = nb_dist_agree(dist, status, &first);
        if (first != nb_dist_rank(dist))
            err.msg[0] = 0;
        status = mine ? mine : all;
    }
    if (mine == 1 && err.msg[0])
        cli_fail(who, &err);
    cli_outputs_release(&claimed);
    if (r.log)
        fclose(r.log);
    plot_history_free(&r.history);
    nb_trainer_free(t);
    nb_model_free(m);
    nb_gemm_free(gemm);
    nb_dataset_free(&train);
    nb_dataset_free(&val);
    nb_dataset_free(&test);
    nb_metrics_free(&test_metrics);
    nb_dataset_free(&all);
    if (need_abort)
        nb_dist_abort(dist, status); /* a rank that stops alone would leave the others waiting */
    nb_dist_free(dist);
    return status;
}
