#ifndef SHOAL_COPENSSL_SHIM_H
#define SHOAL_COPENSSL_SHIM_H
// The only C that Net sees of OpenSSL. Swift cannot import function-like macros
// or variadic functions, so each one Net needs is wrapped here as a static
// inline function named shoal_<macro>. No logic lives here.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/bio.h>
#include <openssl/asn1.h>

static inline int shoal_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int shoal_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
static inline long shoal_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}
static inline uint64_t shoal_SSL_CTX_set_options(SSL_CTX *ctx, uint64_t options) {
    return (uint64_t)SSL_CTX_set_options(ctx, options);
}
static inline int shoal_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
static inline long shoal_BIO_get_mem_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}
static inline size_t shoal_BIO_ctrl_pending(BIO *bio) {
    return BIO_ctrl_pending(bio);
}
static inline int shoal_BIO_set_mem_eof_return(BIO *bio, int value) {
    return (int)BIO_set_mem_eof_return(bio, value);
}
static inline EVP_PKEY *shoal_EVP_EC_gen_P256(void) {
    return EVP_EC_gen("P-256");
}
static inline int shoal_sk_X509_num(const STACK_OF(X509) *stack) {
    return sk_X509_num(stack);
}
static inline X509 *shoal_sk_X509_value(const STACK_OF(X509) *stack, int index) {
    return sk_X509_value(stack, index);
}
static inline STACK_OF(X509) *shoal_SSL_get_peer_cert_chain(const SSL *ssl) {
    return SSL_get_peer_cert_chain(ssl);
}
static inline STACK_OF(X509_EXTENSION) *shoal_sk_X509_EXTENSION_new_null(void) {
    return sk_X509_EXTENSION_new_null();
}
static inline int shoal_sk_X509_EXTENSION_push(STACK_OF(X509_EXTENSION) *stack, X509_EXTENSION *extension) {
    return sk_X509_EXTENSION_push(stack, extension);
}
static inline void shoal_sk_X509_EXTENSION_pop_free(STACK_OF(X509_EXTENSION) *stack) {
    sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free);
}
static inline int shoal_sk_X509_EXTENSION_num(const STACK_OF(X509_EXTENSION) *stack) {
    return sk_X509_EXTENSION_num(stack);
}
static inline X509_EXTENSION *shoal_sk_X509_EXTENSION_value(const STACK_OF(X509_EXTENSION) *stack, int index) {
    return sk_X509_EXTENSION_value(stack, index);
}
static inline void shoal_sk_X509_EXTENSION_free(STACK_OF(X509_EXTENSION) *stack) {
    sk_X509_EXTENSION_free(stack);
}
// X509_REQ_get_extensions returns a new stack whose elements the caller frees.
static inline void shoal_X509_EXTENSIONS_free(STACK_OF(X509_EXTENSION) *stack) {
    sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free);
}
static inline long shoal_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}
static inline int shoal_SSL_CTX_add1_chain_cert(SSL_CTX *ctx, X509 *certificate) {
    return (int)SSL_CTX_add1_chain_cert(ctx, certificate);
}
// SSL_OP_* are built with SSL_OP_BIT(n), a shift on a cast, which Swift cannot import.
static inline uint64_t shoal_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t shoal_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t shoal_SSL_OP_NO_TICKET(void) { return SSL_OP_NO_TICKET; }
static inline uint64_t shoal_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
// OPENSSL_free is a macro that passes __FILE__ and __LINE__.
static inline void shoal_OPENSSL_free(void *pointer) { OPENSSL_free(pointer); }
#endif
