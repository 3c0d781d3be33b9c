#include "protocol/b64.h"

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t ac_b64_enc_len(size_t n)
{
    return (n + 2) / 3 * 4 + 1;
}

size_t ac_b64_encode(const uint8_t *in, size_t n, char *out, int url)
{
    const char *a = url ? url_alpha : std_alpha;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        if (!url) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        if (!url) out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int dec(char c, int url)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

int ac_b64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen, int url)
{
    size_t len = n;
    if (!url) {
        if (n % 4 != 0) return -1;
        if (n >= 1 && in[n - 1] == '=') len--;
        if (n >= 2 && in[n - 2] == '=') len--;
    }
    if (len % 4 == 1) return -1;
    size_t o = 0, i = 0;
    for (; i + 4 <= len; i += 4) {
        int a = dec(in[i], url), b = dec(in[i + 1], url), c = dec(in[i + 2], url),
            d = dec(in[i + 3], url);
        if ((a | b | c | d) < 0) return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    size_t rest = len - i;
    if (rest == 2) {
        int a = dec(in[i], url), b = dec(in[i + 1], url);
        if ((a | b) < 0 || (b & 15) != 0) return -1;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
    } else if (rest == 3) {
        int a = dec(in[i], url), b = dec(in[i + 1], url), c = dec(in[i + 2], url);
        if ((a | b | c) < 0 || (c & 3) != 0) return -1;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        out[o++] = (uint8_t)((b & 15) << 4 | c >> 2);
    }
    *outlen = o;
    return 0;
}
