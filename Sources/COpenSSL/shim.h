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
#include <string.h>

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

/*
 * The session BIO (wave 11): one BIO, both directions, over the caller's own
 * bytes instead of two memory BIOs. A memory BIO copied every inbound byte in
 * (BIO_write) before SSL_read copied it out, and every record out (BIO_read)
 * after SSL_write copied it in, zeroing each region it grew.
 *
 * - Read side: SSLConnection lends the unread ciphertext (`input`) for the
 *   duration of one SSL_do_handshake / read loop / SSL_shutdown and takes it
 *   back before it returns; OpenSSL copies what it needs into its record
 *   buffer and `input` advances. What it did not consume stays with the
 *   caller. Nothing lent: the read "would block" (BIO_should_retry), as the
 *   memory BIO with mem_eof_return -1 did: this BIO never reports EOF, the
 *   channel's inactivity does.
 * - Write side: SSLConnection lends the free space of the outbound buffer
 *   (`output`) for one SSL_write_ex; the record lands there directly. Writes
 *   with nothing lent (handshake flights, alerts, close_notify), or beyond the
 *   lent space, go to `spill` (owned here, freed with the BIO), which the
 *   caller appends after the lent bytes. Writes never block.
 * All pointers in the state are borrowed for one call at a time; SSLConnection
 * clears `input` and `output` before the memory they point to can go away.
 */
typedef struct relay_session_bio_state {
    const unsigned char *input;   /* lent ciphertext not yet read by OpenSSL, or NULL */
    size_t input_length;
    unsigned char *output;        /* lent free space, or NULL */
    size_t output_capacity;
    size_t output_length;         /* bytes written into `output` */
    unsigned char *spill;         /* owned: ciphertext written with no room lent */
    size_t spill_length;
    size_t spill_capacity;
} relay_session_bio_state;

static inline int relay_session_bio_create(BIO *bio) {
    relay_session_bio_state *state = OPENSSL_zalloc(sizeof(*state));
    if (state == NULL) return 0;
    BIO_set_data(bio, state);
    BIO_set_init(bio, 1);
    return 1;
}

static inline int relay_session_bio_destroy(BIO *bio) {
    relay_session_bio_state *state = BIO_get_data(bio);
    if (state != NULL) {
        OPENSSL_free(state->spill);
        OPENSSL_free(state);
    }
    BIO_set_data(bio, NULL);
    return 1;
}

static inline int relay_session_bio_read(BIO *bio, char *data, size_t length, size_t *read) {
    relay_session_bio_state *state = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    *read = 0;
    if (state->input_length == 0) {
        BIO_set_retry_read(bio);  /* "want more", never EOF (mem_eof_return -1) */
        return 0;
    }
    size_t count = length < state->input_length ? length : state->input_length;
    memcpy(data, state->input, count);
    state->input += count;
    state->input_length -= count;
    *read = count;
    return 1;
}

static inline int relay_session_bio_write(BIO *bio, const char *data, size_t length, size_t *written) {
    relay_session_bio_state *state = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    *written = 0;
    /* Once anything spilled, later bytes spill too, so the order holds (lent bytes first). */
    if (state->output != NULL && state->spill_length == 0
        && state->output_capacity - state->output_length >= length) {
        memcpy(state->output + state->output_length, data, length);
        state->output_length += length;
    } else {
        if (state->spill_capacity - state->spill_length < length) {
            size_t capacity = state->spill_capacity ? state->spill_capacity : 4096;
            while (capacity - state->spill_length < length) capacity *= 2;
            unsigned char *grown = OPENSSL_realloc(state->spill, capacity);
            if (grown == NULL) return 0;  /* no retry flag: a hard error */
            state->spill = grown;
            state->spill_capacity = capacity;
        }
        memcpy(state->spill + state->spill_length, data, length);
        state->spill_length += length;
    }
    *written = length;
    return 1;
}

static inline long relay_session_bio_ctrl(BIO *bio, int cmd, long num, void *ptr) {
    (void)num; (void)ptr;
    relay_session_bio_state *state = BIO_get_data(bio);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;  /* nothing is buffered on the way out */
    case BIO_CTRL_PENDING: return (long)state->input_length;
    case BIO_CTRL_WPENDING: return (long)state->spill_length;
    case BIO_CTRL_EOF: return state->input_length == 0;  /* as the memory BIO; reads still only retry */
    default: return 0;
    }
}

/* The method, made once by SSLConnection (a global, never freed). */
static inline BIO_METHOD *relay_session_bio_method_new(void) {
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "relay session");
    if (method == NULL) return NULL;
    if (BIO_meth_set_create(method, relay_session_bio_create) != 1
        || BIO_meth_set_destroy(method, relay_session_bio_destroy) != 1
        || BIO_meth_set_read_ex(method, relay_session_bio_read) != 1
        || BIO_meth_set_write_ex(method, relay_session_bio_write) != 1
        || BIO_meth_set_ctrl(method, relay_session_bio_ctrl) != 1) {
        BIO_meth_free(method);
        return NULL;
    }
    return method;
}

/* Frees the spill buffer once its bytes are taken: it holds handshake
 * flights, alerts and tickets, not the records of a session (those fit the
 * lent room), so keeping its 4 KiB+ after the handshake only added to every
 * idle connection's memory. */
static inline void relay_session_bio_release_spill(relay_session_bio_state *state) {
    OPENSSL_free(state->spill);
    state->spill = NULL;
    state->spill_length = 0;
    state->spill_capacity = 0;
}

/* The state of a BIO made with that method (owned by the BIO). */
static inline relay_session_bio_state *relay_session_bio_state_of(BIO *bio) { return BIO_get_data(bio); }

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
/* PEM reads never ask for a passphrase: a NULL callback makes OpenSSL use
   PEM_def_callback, which prompts on the controlling terminal and waits (a
   relayd started from a shell with an encrypted key hung at start, and a
   SIGHUP reload would have blocked on the terminal). This one refuses, so an
   encrypted key fails to load and the caller names it. */
static inline int relay_pem_no_passphrase(char *buf, int size, int rwflag, void *u) {
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}
static inline X509 *relay_PEM_read_bio_X509(BIO *bio) { return PEM_read_bio_X509(bio, NULL, relay_pem_no_passphrase, NULL); }
static inline X509_CRL *relay_PEM_read_bio_X509_CRL(BIO *bio) { return PEM_read_bio_X509_CRL(bio, NULL, relay_pem_no_passphrase, NULL); }
static inline EVP_PKEY *relay_PEM_read_bio_PrivateKey(BIO *bio) { return PEM_read_bio_PrivateKey(bio, NULL, relay_pem_no_passphrase, NULL); }
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
