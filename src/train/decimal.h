/* Internal: floats widened to the double of their shortest decimal. */
#ifndef NB_DECIMAL_H
#define NB_DECIMAL_H

/* The double nearest to the shortest decimal (≤ 9 significant digits) that reads back as x:
 * 0.9f → 0.9, 1e-8f → 1e-8. */
double nb_widen_decimal(float x);

#endif
