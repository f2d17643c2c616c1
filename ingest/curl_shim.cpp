// libcurl, loaded on first use. Only Microsoft Graph and OAuth need HTTP, and libcurl drags
// some 30 shared libraries into every process: linked directly, they made each
// `mailvault search` pay ~20 ms of start-up. These definitions stand in for the libcurl
// entry points mailvault uses and forward to the real library, found with dlopen.
#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace {

void* curl_library() {
    static void* handle = [] {
        void* h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            std::fprintf(stderr, "mailvault: cannot load libcurl (package libcurl4): %s\n", dlerror());
            std::abort();  // no HTTP at all: a broken installation, not a runtime condition
        }
        return h;
    }();
    return handle;
}

template <typename F>
F resolve(const char* name) {
    void* p = dlsym(curl_library(), name);
    if (!p) {
        std::fprintf(stderr, "mailvault: libcurl lacks %s\n", name);
        std::abort();
    }
    return reinterpret_cast<F>(p);
}

#define MV_CURL_FN(ret, name, params)                         \
    using name##_fn = ret(*) params;                          \
    name##_fn real_##name() {                                 \
        static name##_fn f = resolve<name##_fn>(#name);       \
        return f;                                             \
    }

MV_CURL_FN(CURLcode, curl_global_init, (long))
MV_CURL_FN(CURL*, curl_easy_init, ())
MV_CURL_FN(void, curl_easy_cleanup, (CURL*))
MV_CURL_FN(void, curl_easy_reset, (CURL*))
MV_CURL_FN(CURLcode, curl_easy_perform, (CURL*))
MV_CURL_FN(const char*, curl_easy_strerror, (CURLcode))
MV_CURL_FN(curl_slist*, curl_slist_append, (curl_slist*, const char*))
MV_CURL_FN(void, curl_slist_free_all, (curl_slist*))
MV_CURL_FN(CURLcode, curl_easy_setopt, (CURL*, CURLoption, ...))
MV_CURL_FN(CURLcode, curl_easy_getinfo, (CURL*, CURLINFO, ...))

}  // namespace

extern "C" {

CURLcode curl_global_init(long flags) { return real_curl_global_init()(flags); }
CURL* curl_easy_init(void) { return real_curl_easy_init()(); }
void curl_easy_cleanup(CURL* c) { real_curl_easy_cleanup()(c); }
void curl_easy_reset(CURL* c) { real_curl_easy_reset()(c); }
CURLcode curl_easy_perform(CURL* c) { return real_curl_easy_perform()(c); }
const char* curl_easy_strerror(CURLcode code) { return real_curl_easy_strerror()(code); }
curl_slist* curl_slist_append(curl_slist* list, const char* s) { return real_curl_slist_append()(list, s); }
void curl_slist_free_all(curl_slist* list) { real_curl_slist_free_all()(list); }

// The one variadic argument's type follows from the option number (see curl.h CURLOPTTYPE_*).
CURLcode curl_easy_setopt(CURL* c, CURLoption option, ...) {
    va_list ap;
    va_start(ap, option);
    CURLcode rc;
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        long v = va_arg(ap, long);
        rc = real_curl_easy_setopt()(c, option, v);
    } else if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB) {
        curl_off_t v = va_arg(ap, curl_off_t);
        rc = real_curl_easy_setopt()(c, option, v);
    } else {
        void* v = va_arg(ap, void*);
        rc = real_curl_easy_setopt()(c, option, v);
    }
    va_end(ap);
    return rc;
}

CURLcode curl_easy_getinfo(CURL* c, CURLINFO info, ...) {
    va_list ap;
    va_start(ap, info);
    void* out = va_arg(ap, void*);
    va_end(ap);
    return real_curl_easy_getinfo()(c, info, out);
}

}  // extern "C"
