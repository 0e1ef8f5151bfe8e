/* A CSV file of numbers in memory, as plot-csv and train --plot read them: a header row of
 * names, then rows of numbers (an empty cell or "nan" is NaN). A column may also be kept as
 * text, e.g. the group names of a long-format table. */
#ifndef NB_CLI_CSV_TABLE_H
#define NB_CLI_CSV_TABLE_H

#include "nabla.h"

typedef struct csv_table {
    int cols;
    char **names;
    int64_t rows, cap;
    double *v;         /* rows × cols; NaN where a cell is empty or not a number */
    int64_t *bad_row;  /* per column: first line (1-based) with a non-number, or 0 */
    char **bad_text;   /* per column: that cell */
    int keep;          /* the column kept as text, or -1 */
    char **text;       /* rows: that column's cells */
} csv_table;

/* Reads path into *t (the caller frees it with csv_table_free; freed already on error). keep
 * names a column (by name or 0-based index) whose cells are kept as text, or is NULL. Errors
 * name the file and line: a row with another number of fields than the header, an empty
 * file, no column `keep`. */
nb_status csv_table_read(const char *path, const char *keep, csv_table *t, nb_error *err);

/* A numeric column by name, else by 0-based index; -1 with err set when there is none (the
 * message lists the columns) or a cell of it is not a number (naming the line). */
int csv_table_column(const csv_table *t, const char *path, const char *name, nb_error *err);

void csv_table_free(csv_table *t);

#endif
