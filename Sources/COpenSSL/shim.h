#ifndef RELAY_COPENSSL_SHIM_H
#define RELAY_COPENSSL_SHIM_H
/*
 * The system OpenSSL 3 (Debian libssl-dev) for Swift.
 *
 * Swift cannot import function-like macros or the SSL_OP_* / SSL_MODE_*
 * constants (they are built from macros). Each wrapper below is named
 * `relay_<MACRO>` after the macro it wraps, so a reader can look the macro
 * up in the OpenSSL manual pages.
 */
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/x509_vfy.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/objects.h>

/* SSL_CTX_set_min_proto_version (no maximum is set: TLS 1.3 is the newest) */
static inline int relay_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
/* SSL_CTX_set_mode */
static inline long relay_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
/* SSL_CTX_set1_groups_list */
static inline int relay_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}
/* SSL_CTX_set_tlsext_servername_callback is not needed; SSL_set_tlsext_host_name is: */
static inline int relay_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
/* SSL_CTX_build_cert_chain and its flags */
static inline long relay_SSL_CTX_build_cert_chain(SSL_CTX *ctx, long flags) {
    return SSL_CTX_build_cert_chain(ctx, flags);
}
static inline long relay_SSL_BUILD_CHAIN_FLAG_NO_ROOT(void) { return SSL_BUILD_CHAIN_FLAG_NO_ROOT; }
static inline long relay_SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR(void) { return SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR; }
static inline long relay_SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR(void) { return SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR; }
/* SSL_CTX_set_session_cache_mode */
static inline long relay_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

/* SSL_MODE_* */
static inline long relay_SSL_MODE_RELEASE_BUFFERS(void) { return SSL_MODE_RELEASE_BUFFERS; }
static inline long relay_SSL_SESS_CACHE_OFF(void) { return SSL_SESS_CACHE_OFF; }

/* SSL_OP_* */
static inline uint64_t relay_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t relay_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t relay_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline uint64_t relay_SSL_OP_NO_TICKET(void) { return SSL_OP_NO_TICKET; }

/* BIO_set_mem_eof_return (BIO_ctrl_pending is a function and called directly) */
static inline int relay_BIO_set_mem_eof_return(BIO *bio, int v) { return (int)BIO_set_mem_eof_return(bio, v); }

/* sk_GENERAL_NAME_* */
static inline int relay_sk_GENERAL_NAME_num(const GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }
static inline GENERAL_NAME *relay_sk_GENERAL_NAME_value(const GENERAL_NAMES *names, int i) {
    return sk_GENERAL_NAME_value(names, i);
}
static inline void relay_GENERAL_NAMES_free(GENERAL_NAMES *names) { GENERAL_NAMES_free(names); }
/* sk_X509_* */
static inline STACK_OF(X509) *relay_sk_X509_new_null(void) { return sk_X509_new_null(); }
static inline int relay_sk_X509_push(STACK_OF(X509) *s, X509 *x) { return sk_X509_push(s, x); }
static inline int relay_sk_X509_num(const STACK_OF(X509) *s) { return sk_X509_num(s); }
static inline X509 *relay_sk_X509_value(const STACK_OF(X509) *s, int i) { return sk_X509_value(s, i); }
static inline void relay_sk_X509_pop_free(STACK_OF(X509) *s) { sk_X509_pop_free(s, X509_free); }

/* OPENSSL_free */
static inline void relay_OPENSSL_free(void *ptr) { OPENSSL_free(ptr); }

/* GEN_* general name types */
static inline int relay_GEN_DNS(void) { return GEN_DNS; }
static inline int relay_GEN_IPADD(void) { return GEN_IPADD; }
static inline int relay_GEN_URI(void) { return GEN_URI; }
static inline int relay_GEN_EMAIL(void) { return GEN_EMAIL; }

/* X509_V_FLAG_* */
static inline unsigned long relay_X509_V_FLAG_CRL_CHECK(void) { return X509_V_FLAG_CRL_CHECK; }
static inline unsigned long relay_X509_V_FLAG_CRL_CHECK_ALL(void) { return X509_V_FLAG_CRL_CHECK_ALL; }

/* SSL_VERIFY_* */
static inline int relay_SSL_VERIFY_PEER(void) { return SSL_VERIFY_PEER; }
static inline int relay_SSL_VERIFY_FAIL_IF_NO_PEER_CERT(void) { return SSL_VERIFY_FAIL_IF_NO_PEER_CERT; }

/* SSL_CTX_add1_chain_cert */
static inline int relay_SSL_CTX_add1_chain_cert(SSL_CTX *ctx, X509 *x509) {
    return (int)SSL_CTX_add1_chain_cert(ctx, x509);
}
/* ERR_GET_LIB / ERR_GET_REASON and the SSL reason codes RelayTLS classifies */
static inline int relay_ERR_GET_LIB(unsigned long e) { return ERR_GET_LIB(e); }
static inline int relay_ERR_GET_REASON(unsigned long e) { return ERR_GET_REASON(e); }
static inline int relay_ERR_LIB_SSL(void) { return ERR_LIB_SSL; }
static inline int relay_SSL_AD_REASON_OFFSET(void) { return SSL_AD_REASON_OFFSET; }
static inline int relay_SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE(void) { return SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE; }
static inline int relay_SSL_R_UNEXPECTED_EOF_WHILE_READING(void) { return SSL_R_UNEXPECTED_EOF_WHILE_READING; }
/* EVP_EC_gen is a variadic macro (EVP_PKEY_Q_keygen), which Swift cannot call */
static inline EVP_PKEY *relay_EVP_EC_gen_P256(void) { return EVP_EC_gen("P-256"); }
/* MBSTRING_UTF8 */
static inline int relay_MBSTRING_UTF8(void) { return MBSTRING_UTF8; }
/* PEM read/write with no password callback (NULL callback and user data) */
static inline X509 *relay_PEM_read_bio_X509(BIO *bio) { return PEM_read_bio_X509(bio, NULL, NULL, NULL); }
static inline X509_CRL *relay_PEM_read_bio_X509_CRL(BIO *bio) { return PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL); }
static inline EVP_PKEY *relay_PEM_read_bio_PrivateKey(BIO *bio) { return PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL); }
static inline int relay_PEM_write_bio_PrivateKey(BIO *bio, EVP_PKEY *key) {
    return PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
}
/* X509_PURPOSE_* */
static inline int relay_X509_PURPOSE_SSL_CLIENT(void) { return X509_PURPOSE_SSL_CLIENT; }
static inline int relay_X509_PURPOSE_SSL_SERVER(void) { return X509_PURPOSE_SSL_SERVER; }
/* X509_V_OK */
static inline long relay_X509_V_OK(void) { return X509_V_OK; }
/* TLS versions */
static inline int relay_TLS1_2_VERSION(void) { return TLS1_2_VERSION; }
static inline int relay_TLS1_3_VERSION(void) { return TLS1_3_VERSION; }
/* SSL_ERROR_* */
static inline int relay_SSL_ERROR_WANT_READ(void) { return SSL_ERROR_WANT_READ; }
static inline int relay_SSL_ERROR_WANT_WRITE(void) { return SSL_ERROR_WANT_WRITE; }
static inline int relay_SSL_ERROR_ZERO_RETURN(void) { return SSL_ERROR_ZERO_RETURN; }
/* NIDs used by identity extraction and the development PKI */
static inline int relay_NID_subject_alt_name(void) { return NID_subject_alt_name; }
static inline int relay_NID_undef(void) { return NID_undef; }

/* sk_GENERAL_NAME construction (development PKI) */
static inline GENERAL_NAMES *relay_sk_GENERAL_NAME_new_null(void) { return sk_GENERAL_NAME_new_null(); }
static inline int relay_sk_GENERAL_NAME_push(GENERAL_NAMES *s, GENERAL_NAME *n) { return sk_GENERAL_NAME_push(s, n); }
static inline int relay_X509V3_ADD_DEFAULT(void) { return X509V3_ADD_DEFAULT; }

#endif
