/* synth_impl.h — a window into the synthetic data generator's latent structure, for tests only.
 *
 * The files written by cr_synth_write carry no topic column (real data has none either), so tests that check
 * "text and behaviour carry topic signal" need the hidden truth. This header is private (not installed). */
#ifndef CROSSREC_SYNTH_IMPL_H
#define CROSSREC_SYNTH_IMPL_H

#include "crossrec/data.h"

/* Rebuilds the item side of the model for params p, exactly as cr_synth_write does, and copies out per item
 * (arrays of p->n_items, caller-owned; any may be NULL): its domain index (order of the domain names),
 * main topic, and second topic (-1 when none). Errors: CR_ERR_ARG, CR_ERR_NOMEM. */
cr_status cr_synth_item_latents(const cr_synth_params *p, int32_t *domain, int32_t *main_topic,
                                int32_t *second_topic);

/* Name of domain k (0-based): books, music, ..., then books2, music2, ... Writes at most cap bytes. */
void cr_synth_domain_name(int k, char *buf, size_t cap);

#endif
