/* Shared by the examples that draw: they stay library-only and hand their CSV to the tool,
 * `nabla plot-csv`, which draws with cairo. */
#ifndef NB_EXAMPLES_PLOT_TOOL_H
#define NB_EXAMPLES_PLOT_TOOL_H

#include "example.h"

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Runs the nabla tool with args (args[0] is filled in: $NABLA, else ../nabla next to this
 * program's directory, wherever it is run from, else nabla on PATH); returns its exit status
 * (127 if it could not run). */
static int run_tool(const char *self, char **args)
{
    char dir[4096], path[4096 + 16];
    const char *tool = getenv("NABLA");
    if (!tool && example_self_dir(self, dir, sizeof dir) == 0) {
        snprintf(path, sizeof path, "%s/../nabla", dir);
        tool = access(path, X_OK) == 0 ? path : NULL;
    }
    args[0] = (char *)(tool ? tool : "nabla");
    pid_t pid;
    int status;
    if (posix_spawnp(&pid, args[0], NULL, NULL, args, environ) != 0) {
        fprintf(stderr, "%s: cannot run %s (set NABLA to the tool's path)\n", self, args[0]);
        return 127;
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return 127;
    return WEXITSTATUS(status);
}

/* With --png FILE.png, the CSV goes to FILE.csv instead of stdout (the terminal gets the
 * summary and the picture, not 400 rows): opens it (csv receives its name) and returns the
 * stream, or NULL with a message. */
static FILE *open_csv_beside(const char *png, char *csv, size_t size)
{
    size_t len = strlen(png);
    int ext = len > 4 && strcmp(png + len - 4, ".png") == 0;
    snprintf(csv, size, "%.*s.csv", (int)(ext ? len - 4 : len), png);
    FILE *f = fopen(csv, "w");
    if (!f)
        perror(csv);
    return f;
}

#endif
