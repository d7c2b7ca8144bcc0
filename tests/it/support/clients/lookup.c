/*
 * A resolver client that does what applications do: it asks the C library, which reads
 * /etc/resolv.conf and talks DNS itself. Built twice by the tests, statically against musl
 * (as every Alpine container resolves) and against glibc, so each library's own rules
 * decide what an answer means.
 *
 *   lookup addr NAME        getaddrinfo(NAME, AF_UNSPEC): one address a line, exit 0;
 *                           on failure "error: <gai_strerror>" and exit 2
 *   lookup query NAME TYPE  res_query(NAME, IN, TYPE number): "rcode N answers N", exit 0;
 *                           on failure "error: h_errno N" and exit 2
 *   lookup ad NAME TYPE [do]
 *                           as query, printing "rcode N answers N ad N" with the header's AD
 *                           bit as the library hands it back (glibc 2.31+ keeps it only under
 *                           `options trust-ad`); with "do", EDNS0 with the DO bit is asked
 *                           for too (RES_USE_EDNS0 | RES_USE_DNSSEC in _res.options)
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int addr(const char *name)
{
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0) {
        printf("error: %s\n", gai_strerror(rc));
        return 2;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN];
        const void *raw = ai->ai_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        inet_ntop(ai->ai_family, raw, text, sizeof text);
        printf("%s\n", text);
    }
    freeaddrinfo(res);
    return 0;
}

static int query(const char *name, int type)
{
    unsigned char answer[65535];
    int len = res_query(name, C_IN, type, answer, sizeof answer);
    if (len < 12) {
        printf("error: h_errno %d\n", h_errno);
        return 2;
    }
    printf("rcode %d answers %d\n", answer[3] & 0x0f, (answer[6] << 8) | answer[7]);
    return 0;
}

static int query_ad(const char *name, int type, int dnssec_ok)
{
    unsigned char answer[65535];
    if (res_init() != 0) {
        printf("error: res_init\n");
        return 2;
    }
    if (dnssec_ok)
        _res.options |= RES_USE_EDNS0 | RES_USE_DNSSEC;
    int len = res_query(name, C_IN, type, answer, sizeof answer);
    if (len < 12) {
        printf("error: h_errno %d\n", h_errno);
        return 2;
    }
    printf("rcode %d answers %d ad %d\n", answer[3] & 0x0f, (answer[6] << 8) | answer[7],
           (answer[3] >> 5) & 1);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "addr") == 0)
        return addr(argv[2]);
    if (argc == 4 && strcmp(argv[1], "query") == 0)
        return query(argv[2], atoi(argv[3]));
    if ((argc == 4 || (argc == 5 && strcmp(argv[4], "do") == 0)) && strcmp(argv[1], "ad") == 0)
        return query_ad(argv[2], atoi(argv[3]), argc == 5);
    fprintf(stderr, "usage: lookup addr NAME | lookup query NAME TYPE | lookup ad NAME TYPE [do]\n");
    return 64;
}
