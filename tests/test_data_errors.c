/* Hostile inputs: scripts/make-bad-inputs.py writes malformed IDX (gzipped and plain) and
 * CSV files with a manifest of what each error message must say; every one must be refused
 * with NB_EFORMAT, a message naming the file and the expected text, and the data set left
 * empty. Run under -fsanitize=address,undefined to show that no case reads out of bounds
 * or leaks. Runs from the repository root. */
#include "nabla.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* AddressSanitizer reserves terabytes of address space, so the address-space limit below
 * cannot be used under it. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static char dir[64];

static void path_in_dir(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

static int dataset_is_empty(const nb_dataset *ds)
{
    return ds->count == 0 && !ds->u8 && !ds->f32 && !ds->labels && ds->classes == 0 &&
           !ds->targets && ds->target_count == 0 && !ds->class_names && !ds->target_names;
}

/* Loads one case as the manifest's naming convention says. */
static nb_status load_case(const char *name, nb_dataset *ds, nb_error *err)
{
    char path[1200], good[1200];
    path_in_dir(path, sizeof path, name);
    path_in_dir(good, sizeof good, "good-images.idx3.gz");
    if (strncmp(name, "images-", 7) == 0)
        return nb_idx_load(ds, path, NULL, err);
    if (strncmp(name, "labels-", 7) == 0)
        return nb_idx_load(ds, good, path, err);
    if (strncmp(name, "csvt-", 5) == 0) {
        nb_csv_options opt = {.targets = "y,z", .kind = NB_TARGET_VALUES};
        return nb_csv_load_with(ds, path, &opt, err);
    }
    if (strncmp(name, "csvn-", 5) == 0) {
        static const char *const names[] = {"cat", "dog"};
        nb_csv_options opt = {.targets = "label", .class_names = names, .class_count = 2};
        return nb_csv_load_with(ds, path, &opt, err);
    }
    return nb_csv_load(ds, path, "label", err);
}

/* A header announcing 2^30 bytes in a 100-byte file must be refused as truncated without
 * allocating the gigabyte. A child process limits its address space to what it uses now
 * plus 256 MiB and loads the file: an up-front allocation would fail with NB_ENOMEM. */
static void test_no_huge_allocation(void)
{
#ifdef UNDER_ASAN
    printf("SKIP address-space limit check under AddressSanitizer\n");
#else
    char path[1200];
    path_in_dir(path, sizeof path, "images-huge-count.idx3");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        long pages = 0;
        FILE *fp = fopen("/proc/self/statm", "r");
        if (!fp || fscanf(fp, "%ld", &pages) != 1)
            _exit(3);
        fclose(fp);
        rlim_t limit = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
        struct rlimit rl = {limit, limit};
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(3);
        nb_dataset ds;
        nb_error err = {0};
        nb_status st = nb_idx_load(&ds, path, NULL, &err);
        if (st != NB_EFORMAT || !strstr(err.msg, "truncated")) {
            fprintf(stderr, "under a 256 MiB allowance: %s: %s\n", nb_status_name(st), err.msg);
            _exit(1);
        }
        _exit(0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the huge-count file was not refused within 256 MiB (status %d)", status);
#endif
}

int main(void)
{
    strcpy(dir, "/tmp/nabla-bad-inputs-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 scripts/make-bad-inputs.py %s", dir);
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "'%s' failed (status %d): run from the repository root", cmd, rc);

    nb_dataset ds;
    nb_error err = {0};
    char path[1200], path2[1200];

    /* The good files load, so the failures below come from the damage alone. */
    path_in_dir(path, sizeof path, "good-images.idx3.gz");
    path_in_dir(path2, sizeof path2, "good-labels.idx1.gz");
    CHECK_OK(nb_idx_load(&ds, path, path2, &err), &err);
    CHECK(ds.count == 6 && ds.ndim == 2 && ds.dims[0] == 2 && ds.dims[1] == 3 &&
          ds.classes == 3);
    nb_dataset_free(&ds);
    path_in_dir(path, sizeof path, "good.csv");
    CHECK_OK(nb_csv_load(&ds, path, "label", &err), &err);
    CHECK(ds.count == 2 && ds.features == 2 && ds.classes == 2);
    nb_dataset_free(&ds);

    path_in_dir(path, sizeof path, "manifest.tsv");
    FILE *fp = fopen(path, "r");
    CHECK_MSG(fp != NULL, "cannot open %s", path);
    int cases = 0;
    char line[1024];
    while (fp && fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        const char *name = line, *expect = tab + 1;
        cases++;
        memset(&err, 0, sizeof err);
        /* Garbage in ds: the loaders must not read or free what they are given. */
        memset(&ds, 0xA5, sizeof ds);
        nb_status st = load_case(name, &ds, &err);
        CHECK_MSG(st == NB_EFORMAT, "%s: status %s, expected NB_EFORMAT (message: %s)", name,
                  nb_status_name(st), err.msg);
        CHECK_MSG(err.code == st, "%s: err.code %d != status %d", name, err.code, st);
        CHECK_MSG(strstr(err.msg, name) != NULL, "%s: the message does not name the file: %s",
                  name, err.msg);
        CHECK_MSG(strstr(err.msg, expect) != NULL, "%s: expected \"%s\" in the message: %s",
                  name, expect, err.msg);
        CHECK_MSG(dataset_is_empty(&ds), "%s: the data set is not left empty", name);
        if (st == NB_OK)
            nb_dataset_free(&ds);
        if (getenv("NABLA_VERBOSE"))
            printf("%-34s %s\n", name, err.msg);
    }
    if (fp)
        fclose(fp);
    CHECK_MSG(cases >= 25, "only %d cases in the manifest", cases);
    printf("%d malformed inputs refused\n", cases);

    test_no_huge_allocation();

    /* Missing files are I/O errors, not format errors. */
    path_in_dir(path, sizeof path, "no-such-file.idx3.gz");
    CHECK(nb_idx_load(&ds, path, NULL, &err) == NB_EIO && strstr(err.msg, "no-such-file"));
    path_in_dir(path, sizeof path, "no-such-file.csv");
    CHECK(nb_csv_load(&ds, path, NULL, &err) == NB_EIO && strstr(err.msg, "no-such-file"));
    path_in_dir(path, sizeof path, "good-images.idx3.gz");
    path_in_dir(path2, sizeof path2, "no-labels.idx1.gz");
    CHECK(nb_idx_load(&ds, path, path2, &err) == NB_EIO && strstr(err.msg, "no-labels") &&
          dataset_is_empty(&ds));
    /* A directory is not a file. */
    CHECK(nb_csv_load(&ds, dir, NULL, &err) != NB_OK && dataset_is_empty(&ds));
    CHECK(nb_idx_load(&ds, dir, NULL, &err) != NB_OK && dataset_is_empty(&ds));

    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_finish("test_data_errors");
}
