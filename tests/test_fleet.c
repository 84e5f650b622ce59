/* SPDX-License-Identifier: MIT */
/*
 * The fleet with a real redis-server: three hosts simulated on this
 * machine (three segments, three 'cbctl agent' children, three host ids)
 * and the faults the agent must ride out.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet_harness.h"

static void test_the_harness_restarts_redis_on_the_same_port(void **state)
{
    struct th_redis r = {.password = "pw", .user = "cbshm", .user_password = "upw"};
    redisContext *c;
    redisReply *rep;
    int port;

    (void)state;
    TH_NEED_REDIS();
    th_redis_start(&r);
    port = r.port;
    c = th_redis_connect(&r);
    freeReplyObject(th_redis_cmd(c, "SET %s %s", "k", "v"));
    assert_int_equal(th_redis_int(c, "EXISTS k"), 1);
    redisFree(c);
    th_redis_restart(&r);
    assert_int_equal(r.port, port);
    c = th_redis_connect(&r);
    rep = th_redis_cmd(c, "AUTH %s %s", "cbshm", "upw");
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    assert_int_equal(th_redis_int(c, "EXISTS k"), 0); /* --save '': an empty data set */
    redisFree(c);
    th_redis_destroy(&r);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_the_harness_restarts_redis_on_the_same_port),
};

T_MAIN(tests)
