/* The micro-kernel of gemm_portable.c, written once for every vector ISA: that file includes
 * this one once per ISA, after defining
 *   KERNEL_NAME, KERNEL_ATTR  the function's name and attributes (its target ISA, or nothing)
 *   VEC, LANES                the register type and the floats it holds
 *   KERNEL_MR, KERNEL_NV      the tile's rows, and registers per row (NR = KERNEL_NV·LANES)
 *   VZERO()  VLOAD(p) (aligned)  VBCAST(p) (*p in every lane)  VSET1(x)
 *   VFMA(a, b, c) = a·b + c   VMUL(a, b)  VLOADU(p)  VSTOREU(p, v)
 * and it undefines them again. The kernel (kernel_fn in gemm_portable.c):
 *   C[0:MR, 0:NR] = alpha · Ap·Bp + beta · C over kc steps, Ap kc × MR and Bp kc × NR
 *   (k-major), acc[i][:] += Ap[k][i] · Bp[k][:] in registers; beta == 0 never reads C.
 * The unroll pragmas cover the largest tile (12 rows, 4 registers): full unrolling keeps
 * the accumulators in registers. No include guard: included once per ISA. */

KERNEL_ATTR static void KERNEL_NAME(int kc, const float *Ap, const float *Bp, float *C, int ldc,
                                    float alpha, float beta)
{
    VEC acc[KERNEL_MR][KERNEL_NV];
#pragma GCC unroll 16
    for (int i = 0; i < KERNEL_MR; i++) {
#pragma GCC unroll 4
        for (int v = 0; v < KERNEL_NV; v++)
            acc[i][v] = VZERO();
    }
    for (int k = 0; k < kc; k++) {
        VEC b[KERNEL_NV];
#pragma GCC unroll 4
        for (int v = 0; v < KERNEL_NV; v++)
            b[v] = VLOAD(Bp + LANES * v);
#pragma GCC unroll 16
        for (int i = 0; i < KERNEL_MR; i++) {
            VEC a = VBCAST(Ap + i);
#pragma GCC unroll 4
            for (int v = 0; v < KERNEL_NV; v++)
                acc[i][v] = VFMA(a, b[v], acc[i][v]);
        }
        Ap += KERNEL_MR;
        Bp += KERNEL_NV * LANES;
    }
    VEC va = VSET1(alpha), vb = VSET1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < KERNEL_MR; i++) {
#pragma GCC unroll 4
        for (int v = 0; v < KERNEL_NV; v++) {
            float *c = C + (size_t)i * ldc + LANES * v;
            VEC r = VMUL(va, acc[i][v]);
            if (beta != 0.0f)
                r = VFMA(vb, VLOADU(c), r);
            VSTOREU(c, r);
        }
    }
}

#undef KERNEL_NAME
#undef KERNEL_ATTR
#undef VEC
#undef LANES
#undef KERNEL_MR
#undef KERNEL_NV
#undef VZERO
#undef VLOAD
#undef VBCAST
#undef VSET1
#undef VFMA
#undef VMUL
#undef VLOADU
#undef VSTOREU
