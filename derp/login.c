/*
 * ClientInfo and ServerInfo: open the box, then read the JSON; or write the JSON, then seal.
 * The JSON is small: anything over the caller's frame cap never reaches here.
 */
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "login.h"

#define JSON_MAX 4096

/* Opens nonce||box into a fresh NUL-terminated buffer the caller frees. */
static int box_open(const uint8_t *p, size_t len, const uint8_t *peer_pub, const uint8_t *priv,
                    char **out, size_t *out_len)
{
    if (len < DERP_NONCE_LEN + crypto_box_MACBYTES)
        return BASE_EPARSE;
    size_t clen = len - DERP_NONCE_LEN;
    char *m = malloc(clen - crypto_box_MACBYTES + 1);
    if (!m)
        return -ENOMEM;
    if (crypto_box_open_easy((uint8_t *)m, p + DERP_NONCE_LEN, clen, p, peer_pub, priv) != 0) {
        free(m);
        return BASE_EAUTH;
    }
    *out_len = clen - crypto_box_MACBYTES;
    m[*out_len] = '\0';
    *out = m;
    return 0;
}

/* Writes a frame header, a fresh nonce and box(json) into out. */
static int box_seal(uint8_t type, const uint8_t *prefix, size_t prefix_len, const char *json,
                    const uint8_t *peer_pub, const uint8_t *priv, uint8_t *out, size_t cap)
{
    size_t jlen = strlen(json);
    size_t total = DERP_HEADER_LEN + prefix_len + DERP_NONCE_LEN + crypto_box_MACBYTES + jlen;
    if (total > cap)
        return BASE_ELIMIT;
    derp_put_header(out, type, (uint32_t)(total - DERP_HEADER_LEN));
    uint8_t *p = out + DERP_HEADER_LEN;
    if (prefix_len)
        memcpy(p, prefix, prefix_len);
    p += prefix_len;
    randombytes_buf(p, DERP_NONCE_LEN);
    if (crypto_box_easy(p + DERP_NONCE_LEN, (const uint8_t *)json, jlen, p, peer_pub, priv) != 0)
        return BASE_EPARSE;
    return (int)total;
}

static json_t *json_object_load(const char *m, size_t len)
{
    json_t *o = json_loadb(m, len, JSON_REJECT_DUPLICATES, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* Opens the box and parses its JSON object; the caller json_decrefs *out. */
static int box_open_json(const uint8_t *p, size_t len, const uint8_t *peer_pub, const uint8_t *priv,
                         json_t **out)
{
    char *m;
    size_t mlen;
    int rc = box_open(p, len, peer_pub, priv, &m, &mlen);
    if (rc != 0)
        return rc;
    *out = json_object_load(m, mlen);
    free(m);
    return *out ? 0 : BASE_EPARSE;
}

static int client_info_fields(json_t *o, struct derp_client_info *info)
{
    json_t *v = json_object_get(o, "version");
    json_t *mk = json_object_get(o, "meshKey");
    memset(info, 0, sizeof(*info));
    if (v && !json_is_integer(v))
        return BASE_EPARSE;
    info->version = v ? (int)json_integer_value(v) : 0;
    if (mk) {
        if (!json_is_string(mk) || json_string_length(mk) > DERP_MESH_KEY_MAX)
            return BASE_EPARSE;
        memcpy(info->mesh_key, json_string_value(mk), json_string_length(mk));
    }
    info->can_ack_pings = json_is_true(json_object_get(o, "canAckPings"));
    info->is_prober = json_is_true(json_object_get(o, "isProber"));
    return info->version == DERP_PROTOCOL_VERSION ? 0 : -EPROTO;
}

int derp_client_info_open(const uint8_t *payload, size_t len,
                          const uint8_t server_priv[DERP_KEY_LEN], uint8_t client_key[DERP_KEY_LEN],
                          struct derp_client_info *info)
{
    if (len < DERP_KEY_LEN + DERP_NONCE_LEN)
        return BASE_EPARSE;
    json_t *o;
    int rc = box_open_json(payload + DERP_KEY_LEN, len - DERP_KEY_LEN, payload, server_priv, &o);
    if (rc != 0)
        return rc;
    rc = client_info_fields(o, info);
    json_decref(o);
    if (rc == 0 || rc == -EPROTO)
        memcpy(client_key, payload, DERP_KEY_LEN);
    return rc;
}

int derp_client_info_seal(const struct derp_client_info *info,
                          const uint8_t client_priv[DERP_KEY_LEN],
                          const uint8_t server_pub[DERP_KEY_LEN], uint8_t *out, size_t cap)
{
    uint8_t pub[DERP_KEY_LEN];
    crypto_scalarmult_base(pub, client_priv);
    json_t *o = json_pack("{s:i,s:b,s:b}", "version", info->version, "canAckPings",
                          info->can_ack_pings, "isProber", info->is_prober);
    if (!o)
        return -ENOMEM;
    if (info->mesh_key[0])
        json_object_set_new(o, "meshKey", json_string(info->mesh_key));
    char *json = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!json)
        return -ENOMEM;
    int rc = box_seal(DERP_FRAME_CLIENT_INFO, pub, DERP_KEY_LEN, json, server_pub, client_priv, out,
                      cap);
    free(json);
    return rc;
}

int derp_server_info_seal(const struct derp_server_info *info,
                          const uint8_t server_priv[DERP_KEY_LEN],
                          const uint8_t client_pub[DERP_KEY_LEN], uint8_t *out, size_t cap)
{
    char json[JSON_MAX];
    if (info->rate_bytes_per_sec)
        snprintf(json, sizeof(json),
                 "{\"version\":%d,\"tokenBucketBytesPerSecond\":%u,\"tokenBucketBytesBurst\":%u}",
                 info->version, info->rate_bytes_per_sec, info->rate_burst);
    else
        snprintf(json, sizeof(json), "{\"version\":%d}", info->version);
    return box_seal(DERP_FRAME_SERVER_INFO, NULL, 0, json, client_pub, server_priv, out, cap);
}

int derp_server_info_open(const uint8_t *payload, size_t len,
                          const uint8_t client_priv[DERP_KEY_LEN],
                          const uint8_t server_pub[DERP_KEY_LEN], struct derp_server_info *info)
{
    json_t *o;
    int rc = box_open_json(payload, len, server_pub, client_priv, &o);
    if (rc != 0)
        return rc;
    memset(info, 0, sizeof(*info));
    info->version = (int)json_integer_value(json_object_get(o, "version"));
    info->rate_bytes_per_sec =
        (uint32_t)json_integer_value(json_object_get(o, "tokenBucketBytesPerSecond"));
    info->rate_burst = (uint32_t)json_integer_value(json_object_get(o, "tokenBucketBytesBurst"));
    json_decref(o);
    return 0;
}
