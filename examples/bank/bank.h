/* SPDX-License-Identifier: MIT */
/*
 * bank.h - the bank-account aggregate of the example service (cairn-bank):
 * its three event types (AccountOpened, Deposited, Withdrawn) and three
 * command types (OpenAccount, Deposit, Withdraw), each with the Avro schema
 * of examples/bank/schemas/ (compiled in by CMake), and the plain C
 * callbacks libcairn calls to fold events and decide commands.
 *
 * Rules: an account is opened once; amounts are cents, > 0; a withdrawal
 * may take the balance down to -overdraft and no further; a command's
 * "account" member must name the stream it is sent to. Refusals are domain
 * rejections (cairn_reject) with the codes ALREADY_OPEN, NO_ACCOUNT,
 * WRONG_ACCOUNT, BAD_AMOUNT and INSUFFICIENT_FUNDS.
 *
 * Shared by main.c and bench/sdk/bench_commands.c (linked as cairn_bank).
 */
#ifndef CAIRN_EXAMPLE_BANK_H
#define CAIRN_EXAMPLE_BANK_H

#include <stdint.h>

#include <jansson.h>

#include "cairn/sdk.h"

/**
 * @brief Adds the account aggregate type to @p svc (registers its six
 * schemas through the service's serde).
 * @param[out] out borrowed from the service.
 */
cairn_rc_t bank_add_aggregate(cairn_service_t *svc, cairn_aggregate_t **out, cairn_error_t *err);

/**
 * @brief The events the calling thread's last decide() emitted, as a JSON
 * array of {"type": T, "value": V} (borrowed; valid until this thread's
 * next command). After a cairn_handle() that appended, these are exactly the
 * events appended (decide runs again on a conflict retry, and the last run
 * is the one that was appended). Empty when nothing was decided.
 */
const json_t *bank_last_decision(void);

/** @brief Frees the calling thread's last decision (call before a thread ends). */
void bank_thread_done(void);

/**
 * @brief The next number of a xorshift64 generator (a seeded, repeatable
 * choice of accounts and amounts for the load drivers: `cairn-bank load`
 * and bench_sdk_commands). @p state must not be 0; one per thread.
 */
uint64_t bank_random(uint64_t *state);

#endif
