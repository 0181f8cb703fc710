/* src/flows/store_queue.c: ops come out in the order they went in, whether pushed one at a time
 * or many at once; what does not fit is answered BUSY, everything UNAVAILABLE once closing, and
 * a seed's inserts (deferred) always fit; a pop takes at most its max and leaves the rest queued
 * in order. */
#include "flows/store_queue.h"

#include <criterion/criterion.h>
#include <string.h>

#define OPS 8

/* An op's answer, when the queue gave one. */
typedef struct answered {
  bool done;
  af_store_rc rc;
} answered;

static answered answers[OPS];
static af_store_op ops[OPS];

static void record(af_store_op *op, af_store_rc rc) {
  answered *a = op->ctx;
  cr_expect_not(a->done, "op %d answered twice", (int)(a - answers));
  a->done = true;
  a->rc = rc;
}

static void setup(void) {
  memset(answers, 0, sizeof answers);
  for (int i = 0; i < OPS; i++)
    ops[i] = (af_store_op){.ctx = &answers[i], .done = record};
}

TestSuite(store_queue, .init = setup);

/* Pops up to max and checks they are ops[first..first + count), in order. */
static void expect_popped(af_store_queue *q, size_t max, int first, int count) {
  af_store_op *op = af__queue_pop(q, max);
  for (int i = first; i < first + count; i++, op = op->queue_next) {
    cr_assert_not_null(op, "op %d missing", i);
    cr_expect_eq(op, &ops[i], "op %d out of order", i);
  }
  cr_expect_null(op, "more ops than %d", count);
}

Test(store_queue, many_at_once_follow_the_ones_before_and_what_does_not_fit_is_busy) {
  af_store_queue q;
  af__queue_init(&q, 4);
  cr_assert_eq(af__queue_push(&q, &ops[0]), AF_QUEUE_PUSHED);
  cr_assert_eq(af__queue_push(&q, &ops[1]), AF_QUEUE_PUSHED);
  af_store_op *batch[] = {&ops[2], &ops[3], &ops[4], &ops[5]};
  af__queue_submit_all(&q, batch, 4);
  for (int i = 0; i < 4; i++)
    cr_expect_not(answers[i].done, "op %d answered while queued", i);
  for (int i = 4; i < 6; i++) {
    cr_expect(answers[i].done, "op %d past the room was not answered", i);
    cr_expect_eq(answers[i].rc, AF_STORE_BUSY);
  }
  expect_popped(&q, 16, 0, 4);
  cr_expect_eq(q.n, 0);
  af__queue_fini(&q);
}

Test(store_queue, a_pop_takes_at_most_its_max_and_the_rest_stay_in_order) {
  af_store_queue q;
  af__queue_init(&q, OPS);
  af_store_op *batch[] = {&ops[0], &ops[1], &ops[2], &ops[3], &ops[4]};
  af__queue_submit_all(&q, batch, 5);
  expect_popped(&q, 2, 0, 2);
  cr_expect_eq(q.n, 3);
  cr_assert_eq(af__queue_push(&q, &ops[5]), AF_QUEUE_PUSHED); /* after the ones left */
  expect_popped(&q, 3, 2, 3);
  expect_popped(&q, 3, 5, 1);
  cr_expect_eq(q.n, 0);
  /* emptied by a pop of all: the next ones queue from the start again */
  af_store_op *again[] = {&ops[6], &ops[7]};
  af__queue_submit_all(&q, again, 2);
  expect_popped(&q, 2, 6, 2);
  af__queue_fini(&q);
}

Test(store_queue, a_seeds_inserts_are_taken_past_the_bound_and_requests_are_not) {
  af_store_queue q;
  af__queue_init(&q, 2);
  cr_assert_eq(af__queue_push(&q, &ops[0]), AF_QUEUE_PUSHED);
  ops[1].deferred = true;
  cr_assert_eq(af__queue_push(&q, &ops[1]), AF_QUEUE_PUSHED);
  ops[2].deferred = true;
  cr_assert_eq(af__queue_push(&q, &ops[2]), AF_QUEUE_PUSHED, "deferred, past the bound");
  cr_assert_eq(af__queue_push(&q, &ops[7]), AF_QUEUE_FULL, "a request past the bound");
  ops[3].deferred = ops[5].deferred = true;
  af_store_op *batch[] = {&ops[3], &ops[4], &ops[5]};
  af__queue_submit_all(&q, batch, 3);
  cr_expect(answers[4].done, "the request among them was not turned away");
  cr_expect_eq(answers[4].rc, AF_STORE_BUSY);
  cr_expect_not(answers[3].done || answers[5].done, "a deferred one was turned away");
  af_store_op *op = af__queue_pop(&q, 16);
  const int want[] = {0, 1, 2, 3, 5};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++, op = op->queue_next) {
    cr_assert_not_null(op, "op %d missing", want[i]);
    cr_expect_eq(op, &ops[want[i]], "op %d out of order", want[i]);
  }
  cr_expect_null(op);
  af__queue_fini(&q);
}

Test(store_queue, a_closing_queue_answers_every_op_unavailable) {
  af_store_queue q;
  af__queue_init(&q, OPS);
  cr_assert_eq(af__queue_push(&q, &ops[0]), AF_QUEUE_PUSHED);
  af__queue_close(&q);
  ops[2].deferred = true; /* past no bound once closing */
  af_store_op *batch[] = {&ops[1], &ops[2]};
  af__queue_submit_all(&q, batch, 2);
  for (int i = 1; i < 3; i++) {
    cr_expect(answers[i].done, "op %d was not answered", i);
    cr_expect_eq(answers[i].rc, AF_STORE_UNAVAILABLE);
  }
  expect_popped(&q, 16, 0, 1); /* what was queued before the close still comes out */
  cr_expect_null(af__queue_pop(&q, 16), "a closed, empty queue must not wait");
  af__queue_fini(&q);
}

Test(store_queue, nothing_at_once_changes_nothing) {
  af_store_queue q;
  af__queue_init(&q, 1);
  af__queue_submit_all(&q, NULL, 0);
  cr_expect_eq(q.n, 0);
  cr_assert_eq(af__queue_push(&q, &ops[0]), AF_QUEUE_PUSHED);
  expect_popped(&q, 1, 0, 1);
  af__queue_fini(&q);
}
