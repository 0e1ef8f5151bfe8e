/* Shared by the examples: `--help`, and finding what comes with them (examples/mynet.nb, the
 * nabla tool) from the program's own location, so that they run from any directory. */
#ifndef NB_EXAMPLES_EXAMPLE_H
#define NB_EXAMPLES_EXAMPLE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* With --help or -h anywhere in argv: prints "usage: NAME USAGE", a blank line and ABOUT (what
 * the example shows) to stdout and returns 1, for main to return 0. */
static inline int example_help(int argc, char **argv, const char *name, const char *usage,
                        const char *about)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s %s\n\n%s", name, usage, about);
            return 1;
        }
    return 0;
}

/* The directory holding this program: /proc/self/exe (Linux), else argv[0] when it names a
 * path. Returns 0, or -1 when neither tells (run through PATH on another system). */
static inline int example_self_dir(const char *argv0, char *dir, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    if (n > 0) {
        dir[n] = '\0';
    } else if (argv0 && strchr(argv0, '/') && strlen(argv0) < size) {
        snprintf(dir, size, "%s", argv0);
    } else {
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    return 0;
}

/* The path of examples/NAME for a program built as BUILD/examples/PROGRAM: tried in the
 * source tree (examples/NAME two, then three directories above the program's: BUILD is
 * build/ or a folder inside it such as build/asan/), then beside the program, then relative
 * to the current directory. Returns path; when no candidate is readable, the first one, so
 * that the error names where the file was expected. */
static inline const char *example_file(const char *argv0, const char *name, char *path,
                                       size_t size)
{
    enum { CANDIDATES = 4 };
    char dir[4096], root[4096], candidate[CANDIDATES][8192];
    int have_dir = example_self_dir(argv0, dir, sizeof dir) == 0;
    snprintf(root, sizeof root, "%s", have_dir ? dir : ".");
    for (int up = 1; up <= 3; up++) { /* BUILD/examples → the source tree */
        char *slash = strrchr(root, '/');
        if (!slash)
            snprintf(root, sizeof root, ".");
        else
            *slash = '\0'; /* "" when it was the root directory: "/examples/NAME" below */
        if (up >= 2)
            snprintf(candidate[up - 2], sizeof candidate[up - 2], "%s/examples/%s", root, name);
    }
    snprintf(candidate[2], sizeof candidate[2], "%s/%s", have_dir ? dir : ".", name);
    snprintf(candidate[3], sizeof candidate[3], "examples/%s", name);
    for (int i = 0; i < CANDIDATES; i++)
        if (access(candidate[i], R_OK) == 0 && strlen(candidate[i]) < size) {
            snprintf(path, size, "%s", candidate[i]);
            return path;
        }
    snprintf(path, size, "%.*s", (int)(size - 1), candidate[0]);
    return path;
}

#endif
