/* The shared oneDNN matmul set-up (backend/onednn_matmul.h). */
#include "backend/onednn_matmul.h"

#include <string.h>

#ifdef NB_HAVE_ONEDNN
dnnl_status_t nb_matmul_pd(dnnl_engine_t engine, const nb_matmul_shape *s,
                           dnnl_primitive_desc_t *pd)
{
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t a_dims = {s->M, s->K}, b_dims = {s->K, s->N}, c_dims = {s->M, s->N};
    dnnl_dims_t a_strides = {s->a_strides[0], s->a_strides[1]};
    dnnl_dims_t b_strides = {s->b_strides[0], s->b_strides[1]};
    dnnl_dims_t c_strides = {s->ldc, 1};
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post_ops = NULL;
    *pd = NULL;
    dnnl_status_t st = dnnl_memory_desc_init_by_strides(&a, 2, a_dims, s->type, a_strides);
    if (st == dnnl_success && s->b_md)
        b = *s->b_md;
    else if (st == dnnl_success && s->b_any)
        st = dnnl_memory_desc_init_by_tag(&b, 2, b_dims, s->type, dnnl_format_tag_any);
    else if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_strides(&b, 2, b_dims, s->type, b_strides);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_strides(&c, 2, c_dims, dnnl_f32, c_strides);
    if (st == dnnl_success)
        st = dnnl_matmul_desc_init(&desc, &a, &b, NULL, &c);
    if (st == dnnl_success)
        st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success && s->scaled) {
        const float runtime_scale = DNNL_RUNTIME_F32_VAL;
        st = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &runtime_scale);
    }
    if (st == dnnl_success && s->beta != 0.0f) { /* C ← beta·C + op(A)·op(B) */
        st = dnnl_post_ops_create(&post_ops);
        if (st == dnnl_success)
            st = dnnl_post_ops_append_sum(post_ops, s->beta);
        if (st == dnnl_success)
            st = dnnl_primitive_attr_set_post_ops(attr, post_ops);
    }
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(pd, &desc, attr, engine, NULL);
    if (post_ops)
        dnnl_post_ops_destroy(post_ops);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return st;
}

void nb_matmul_clear(nb_matmul *m)
{
    dnnl_memory_t *mems[] = {&m->a, &m->b, &m->c, &m->scale};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (*mems[i])
            dnnl_memory_destroy(*mems[i]);
    if (m->prim)
        dnnl_primitive_destroy(m->prim);
    memset(m, 0, sizeof *m);
}

dnnl_status_t nb_matmul_make(dnnl_engine_t engine, const nb_matmul_shape *s, float *alpha,
                             nb_matmul *m, const char **impl)
{
    dnnl_primitive_desc_t pd = NULL;
    memset(m, 0, sizeof *m);
    dnnl_status_t st = nb_matmul_pd(engine, s, &pd);
    if (st == dnnl_success)
        st = dnnl_primitive_create(&m->prim, pd);
    if (st == dnnl_success && impl &&
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, impl) != dnnl_success)
        *impl = NULL;
    const dnnl_memory_desc_t *mds[3] = {
        pd ? dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0) : NULL,
        pd ? dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0) : NULL,
        pd ? dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0) : NULL,
    };
    dnnl_memory_t *mems[3] = {&m->a, &m->b, &m->c};
    for (int i = 0; i < 3 && st == dnnl_success; i++)
        st = mds[i] ? dnnl_memory_create(mems[i], mds[i], engine, DNNL_MEMORY_NONE)
                    : dnnl_invalid_arguments;
    if (st == dnnl_success && s->scaled) {
        dnnl_memory_desc_t scale_md;
        dnnl_dims_t scale_dims = {1};
        st = dnnl_memory_desc_init_by_tag(&scale_md, 1, scale_dims, dnnl_f32, dnnl_x);
        if (st == dnnl_success)
            st = dnnl_memory_create(&m->scale, &scale_md, engine, alpha);
    }
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) {
        nb_matmul_clear(m);
        return st;
    }
    m->args[0] = (dnnl_exec_arg_t){.arg = DNNL_ARG_SRC, .memory = m->a};
    m->args[1] = (dnnl_exec_arg_t){.arg = DNNL_ARG_WEIGHTS, .memory = m->b};
    m->args[2] = (dnnl_exec_arg_t){.arg = DNNL_ARG_DST, .memory = m->c};
    m->nargs = 3;
    if (s->scaled)
        m->args[m->nargs++] = (dnnl_exec_arg_t){.arg = DNNL_ARG_ATTR_OUTPUT_SCALES,
                                                .memory = m->scale};
    return dnnl_success;
}
#else
typedef int nb_onednn_matmul_not_built; /* ISO C: a translation unit is not empty */
#endif
