/* Status codes and error messages. The library reports; the caller decides what to print. */
#include "nabla.h"

#include <stdarg.h>
#include <stdio.h>

const char *nb_status_name(nb_status status)
{
    static const char *const names[] = {
        [NB_OK] = "NB_OK",           [NB_ENOMEM] = "NB_ENOMEM",     [NB_EIO] = "NB_EIO",
        [NB_EFORMAT] = "NB_EFORMAT", [NB_ESHAPE] = "NB_ESHAPE",     [NB_EINVAL] = "NB_EINVAL",
        [NB_ENOGRAD] = "NB_ENOGRAD", [NB_ENUMERIC] = "NB_ENUMERIC", [NB_ENOTSUP] = "NB_ENOTSUP",
        [NB_EINTR] = "NB_EINTR",     [NB_EDIST] = "NB_EDIST",
    };
    if ((unsigned)status < sizeof names / sizeof names[0] && names[status])
        return names[status];
    return "NB_E?";
}

nb_status nb_error_set(nb_error *err, nb_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}
