/* synth.c — synthetic multi-domain recommendation data with a known latent structure (cr_synth_write).
 *
 * The story (data.h has the short form): K latent topics are shared by all domains. An item has a domain, a
 * main topic, sometimes a second one, and a Zipf popularity by a random rank within its domain. A user has a
 * sparse topic preference that is the same in every domain — that shared taste is what a cross-domain model
 * can transfer — a Zipf activity level, and one or more active domains. Each event picks one of the user's
 * domains, then an item of that domain, by the user's topics (weight popularity x topic share of the item)
 * with probability topic_share, else by popularity alone. Titles and texts are drawn from per-topic word
 * lists (made-up, pronounceable words), per-domain words and a few generic ones, so items of one topic share
 * words across domains.
 *
 * Main types: synth_model (items, vocabulary, sampling tables), alias_set (many Walker alias tables in flat
 * arrays, O(1) per draw), synth_out (a buffered file written as NAME.tmp and renamed when complete).
 *
 * Invariants:
 *  - every random choice comes from a cr_rng_named stream of p->seed, consumed in a fixed order, so the output
 *    is a function of the parameters (byte-identical for one build and platform; libm's pow/log feed the
 *    weights, so another libm may round differently);
 *  - every domain has at least one item; every user gets at least one event in each of its active domains, so
 *    the users that the file shows as multi-domain are exactly those drawn as such (unless n_inter is too
 *    small to give every multi-domain user two events, then some fall back to one domain);
 *  - exactly n_inter event lines; per-user timestamps strictly increase; fields never hold tabs or newlines.
 */
#include "crossrec/data.h"
#include "crossrec/io.h"
#include "data/synth_impl.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

/* ---- constants of the generative model (part of what the data means; not per-run knobs) ---- */

#define WORDS_PER_TOPIC   30
#define WORDS_PER_DOMAIN  20
#define FILLER_WORDS      200    /* words with no topic or domain: noise every model must see through */
#define WORD_ZIPF         1.0    /* within each word list, word k has weight (k+1)^-1 */
#define SECOND_TOPIC_P    0.4    /* share of items with a second topic */
#define PREF_EPS          0.05   /* share of a user's topic draws that are uniform: taste is never closed */
#define PREF_SHAPE        0.5    /* gamma shape of the weights over a user's liked topics (< 1: one dominates) */
#define MAX_LIKED_TOPICS  6
#define DOMAIN_SKEW       0.7    /* domain k gets weight (k+1)^-0.7 of items, users and events: rich and thin */
#define MAX_ACTIVE        16     /* most domains one user is active in */
#define EXTRA_DOMAIN_P    0.35   /* after the second domain, chance of each further one */
#define MAX_TRIES         8      /* redraws to avoid giving a user an item it already has */
#define T0                1577836800LL            /* 2020-01-01T00:00:00Z */
#define START_SPAN        (3LL * 365 * 86400)     /* users start somewhere in 2020..2022 */
#define MEAN_GAP          129600.0                /* 1.5 days between a user's events, on average */

/* Title/text word sources, as cumulative shares: topic, domain, generic, rest filler. */
#define SRC_TOPIC   0.60
#define SRC_DOMAIN  0.80
#define SRC_GENERIC 0.90

static const char *const domain_names[] = {
    "books",  "music",  "movies", "office", "arts",   "toys",    "garden", "sports",   "kitchen", "beauty",
    "games",  "electronics", "pets", "tools", "grocery", "health", "baby", "automotive", "clothing", "software",
};
#define N_DOMAIN_NAMES ((int)(sizeof domain_names / sizeof domain_names[0]))

static const char *const generic_words[] = {
    "set",     "pack",    "classic", "new",      "deluxe",  "mini",    "pro",     "edition",
    "original", "premium", "large",  "small",    "kit",     "collection", "series", "plus",
    "limited", "special", "bundle",  "standard", "essential", "ultra", "compact", "vintage",
};
#define N_GENERIC ((int)(sizeof generic_words / sizeof generic_words[0]))

/* Syllable parts for made-up words: onset + vowel (+ coda). Chosen to read as pronounceable Latin letters. */
static const char *const onsets[] = {"b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t",
                                     "v", "z", "br", "dr", "gr", "kl", "pr", "st", "tr", "sh", "ch", "w"};
/* plain vowels listed twice: they should be twice as common as the pairs */
static const char *const vowels[] = {"a", "e", "i", "o", "u", "a", "e", "i", "o", "u", "ai", "ou", "ea", "io"};
static const char *const codas[] = {"n", "r", "l", "s", "m", "k", "th", "nd", "st", "x"};
#define N_ONSETS ((uint32_t)(sizeof onsets / sizeof onsets[0]))
#define N_VOWELS ((uint32_t)(sizeof vowels / sizeof vowels[0]))
#define N_CODAS  ((uint32_t)(sizeof codas / sizeof codas[0]))
#define MAX_WORD 32     /* 3 syllables of at most 2+2+2 bytes, with room */

/* ---- parameters ---------------------------------------------------------------------------------- */

cr_synth_params cr_synth_default_params(void) {
    cr_synth_params p;
    memset(&p, 0, sizeof p);
    p.n_users = 3000;
    p.n_items = 2000;
    p.n_inter = 60000;
    p.n_domains = 4;
    p.n_topics = 16;
    p.item_zipf = 0.8;
    p.user_zipf = 0.8;
    p.multi_domain_share = 0.6;
    p.topic_share = 0.8;
    p.new_item_share = 0.02;
    p.seed = 42;
    return p;
}

const char *cr_synth_check_params(const cr_synth_params *p) {
    if (!p) return "no parameters given";
    if (p->n_users < 1 || p->n_users > INT32_MAX) return "n_users must be in 1..2147483647";
    if (p->n_domains < 1 || p->n_domains > 1000) return "n_domains must be in 1..1000";
    if (p->n_items < p->n_domains || p->n_items > INT32_MAX)
        return "n_items must be at least n_domains (every domain needs an item) and at most 2147483647";
    if (p->n_inter < p->n_users) return "n_inter must be at least n_users (every user has an interaction)";
    if (p->n_topics < 1 || p->n_topics > 1000) return "n_topics must be in 1..1000";
    /* Negated comparisons so that NaN is refused too. */
    if (!(p->item_zipf >= 0 && p->item_zipf <= 10)) return "item_zipf must be in 0..10";
    if (!(p->user_zipf >= 0 && p->user_zipf <= 10)) return "user_zipf must be in 0..10";
    if (!(p->multi_domain_share >= 0 && p->multi_domain_share <= 1)) return "multi_domain_share must be in 0..1";
    if (!(p->topic_share >= 0 && p->topic_share <= 1)) return "topic_share must be in 0..1";
    if (!(p->new_item_share >= 0 && p->new_item_share <= 1)) return "new_item_share must be in 0..1";
    return NULL;
}

void cr_synth_domain_name(int k, char *buf, size_t cap) {
    if (k < N_DOMAIN_NAMES) snprintf(buf, cap, "%s", domain_names[k]);
    else snprintf(buf, cap, "%s%d", domain_names[k % N_DOMAIN_NAMES], k / N_DOMAIN_NAMES + 1);
}

/* ---- random helpers ------------------------------------------------------------------------------ */

static uint64_t below64(cr_rng *r, uint64_t n) {
    if (n <= UINT32_MAX) return cr_rng_below(r, (uint32_t)n);
    return cr_rng_u64(r) % n;     /* bias < n / 2^64: irrelevant for synthetic data */
}

/* Gamma(shape, 1) by Marsaglia and Tsang (2000), with the U^(1/a) boost for shape < 1. */
static double gamma_draw(cr_rng *r, double shape) {
    if (shape < 1.0) {
        double u = 1.0 - cr_rng_uniform(r);   /* (0, 1] */
        return gamma_draw(r, shape + 1.0) * pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = cr_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = 1.0 - cr_rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}

/* Index i in [0, n) with cdf[i-1] <= u * cdf[n-1] < cdf[i]; cdf is an unnormalised running sum. */
static int64_t cdf_pick(const double *cdf, int64_t n, double u) {
    double x = u * cdf[n - 1];
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] > x) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static void zipf_cdf(double *cdf, int n, double s) {
    double acc = 0;
    for (int k = 0; k < n; k++) cdf[k] = acc += pow(k + 1.0, -s);
}

/* ---- alias tables: many discrete distributions in flat arrays ------------------------------------- */

/* Table t covers slots [off[t], off[t+1]). The builder fills each slot's value and weight (in prob), then
 * alias_build turns each table into Walker/Vose form: draw a slot uniformly, take its value with probability
 * prob, else its `other` value. One 16-byte slot holds all three so that a draw touches one cache line (the
 * tables are read at random, and separate arrays made that three cache misses). An empty table has
 * off[t] == off[t+1]. */
typedef struct {
    double  prob;
    int32_t value;
    int32_t other;      /* the alias's value; during the build, the alias's slot index within the table */
} alias_slot;

typedef struct {
    int64_t n_tables;
    int64_t *off;       /* (n_tables + 1) */
    alias_slot *slot;   /* (total) */
} alias_set;

static cr_status alias_alloc(alias_set *a, int64_t n_tables, int64_t total) {
    a->n_tables = n_tables;
    a->off = cr_calloc((size_t)n_tables + 1, sizeof *a->off);
    a->slot = cr_malloc((size_t)(total ? total : 1) * sizeof *a->slot);
    if (!a->off || !a->slot)
        return cr_fail(CR_ERR_NOMEM, "synth: out of memory for sampling tables (%lld entries)", (long long)total);
    return CR_OK;
}

static void alias_free(alias_set *a) {
    cr_free(a->off), cr_free(a->slot);
    memset(a, 0, sizeof *a);
}

/* scratch: (largest table) int32. Vose's method: small columns borrow the rest of their height from large
 * ones; works in place on the slots (prob holds the weight on entry). */
static void alias_build(alias_set *a, int32_t *scratch) {
    for (int64_t t = 0; t < a->n_tables; t++) {
        int64_t base = a->off[t], n = a->off[t + 1] - base;
        if (n == 0) continue;
        alias_slot *q = a->slot + base;
        double sum = 0;
        for (int64_t j = 0; j < n; j++) sum += q[j].prob;
        if (!(sum > 0) || !isfinite(sum)) {
            for (int64_t j = 0; j < n; j++) q[j].prob = 1.0;     /* degenerate weights: uniform */
            sum = (double)n;
        }
        /* small stack grows up from scratch[0], large stack down from scratch[n-1] */
        int64_t ns = 0, nl = 0;
        for (int64_t j = 0; j < n; j++) {
            q[j].prob = q[j].prob * (double)n / sum;
            q[j].other = (int32_t)j;
            if (q[j].prob < 1.0) scratch[ns++] = (int32_t)j;
            else scratch[n - 1 - nl++] = (int32_t)j;
        }
        while (ns > 0 && nl > 0) {
            int32_t s = scratch[--ns], l = scratch[n - nl];
            nl--;
            q[s].other = l;
            q[l].prob -= 1.0 - q[s].prob;
            if (q[l].prob < 1.0) scratch[ns++] = l;
            else scratch[n - 1 - nl++] = l;
        }
        /* leftovers are 1 up to rounding */
        while (ns > 0) q[scratch[--ns]].prob = 1.0;
        while (nl > 0) q[scratch[n - nl--]].prob = 1.0;
        for (int64_t j = 0; j < n; j++) q[j].other = q[q[j].other].value;
    }
}

static inline int32_t alias_draw(const alias_set *a, int64_t t, cr_rng *r) {
    int64_t base = a->off[t], n = a->off[t + 1] - base;
    const alias_slot *s = a->slot + base + (int64_t)cr_rng_below(r, (uint32_t)n);
    return cr_rng_uniform(r) < s->prob ? s->value : s->other;
}

/* ---- the model ----------------------------------------------------------------------------------- */

typedef struct {
    cr_synth_params p;
    int D, K;
    int64_t n_items;
    char (*dom_name)[32];       /* (D) */
    int64_t *dom_items;         /* (D) items per domain */
    double *dom_cdf;            /* (D) running sum of domain weights */
    int32_t *item_domain;       /* (n_items) */
    int32_t *item_t1;           /* (n_items) main topic */
    int32_t *item_t2;           /* (n_items) second topic or -1 */
    float   *item_w2;           /* (n_items) share of the second topic, 0 when none */
    double  *item_pop;          /* (n_items) popularity weight, (rank in domain + 1)^-item_zipf; exactly 0 for
                                   new arrivals, which are in no sampling table (pow never gives 0 here) */
    alias_set pop_tab;          /* D tables: popularity within the domain */
    alias_set topic_tab;        /* D*K tables, (d, t) at d*K+t: popularity x share of topic t */
    /* vocabulary: word ids [0, N_GENERIC) generic, then K*WORDS_PER_TOPIC topic words, then
     * D*WORDS_PER_DOMAIN domain words, then FILLER_WORDS filler words */
    cr_strpool words;
    int64_t topic_base, domain_base, filler_base;
    double topic_wcdf[WORDS_PER_TOPIC], domain_wcdf[WORDS_PER_DOMAIN], filler_wcdf[FILLER_WORDS];
} synth_model;

static void model_free(synth_model *m) {
    cr_free(m->dom_name), cr_free(m->dom_items), cr_free(m->dom_cdf);
    cr_free(m->item_domain), cr_free(m->item_t1), cr_free(m->item_t2), cr_free(m->item_w2), cr_free(m->item_pop);
    alias_free(&m->pop_tab);
    alias_free(&m->topic_tab);
    cr_strpool_free(&m->words);
    memset(m, 0, sizeof *m);
}

static cr_status nomem(const char *what, int64_t n) {
    return cr_fail(CR_ERR_NOMEM, "synth: out of memory for %s (%lld entries)", what, (long long)n);
}

/* Domains, topics and popularity of the items (stream "synth.items"). */
static cr_status build_items(synth_model *m, const cr_synth_params *p) {
    memset(m, 0, sizeof *m);
    cr_strpool_init(&m->words);
    m->p = *p;
    m->D = p->n_domains;
    m->K = p->n_topics;
    m->n_items = p->n_items;
    int D = m->D, K = m->K;
    int64_t n = m->n_items;

    m->dom_name = cr_calloc((size_t)D, sizeof *m->dom_name);
    m->dom_items = cr_calloc((size_t)D, sizeof *m->dom_items);
    m->dom_cdf = cr_calloc((size_t)D, sizeof *m->dom_cdf);
    m->item_domain = cr_malloc((size_t)n * sizeof *m->item_domain);
    m->item_t1 = cr_malloc((size_t)n * sizeof *m->item_t1);
    m->item_t2 = cr_malloc((size_t)n * sizeof *m->item_t2);
    m->item_w2 = cr_malloc((size_t)n * sizeof *m->item_w2);
    m->item_pop = cr_malloc((size_t)n * sizeof *m->item_pop);
    int64_t *next_rank = cr_calloc((size_t)D, sizeof *next_rank);
    int32_t *perm = cr_malloc((size_t)n * sizeof *perm);
    if (!m->dom_name || !m->dom_items || !m->dom_cdf || !m->item_domain || !m->item_t1 || !m->item_t2 ||
        !m->item_w2 || !m->item_pop || !next_rank || !perm) {
        cr_free(next_rank), cr_free(perm);
        return nomem("items", n);
    }

    /* Domain k gets weight (k+1)^-DOMAIN_SKEW, one item for sure and its share of the rest; the remainder of
     * the rounding goes to the first domains. */
    double wsum = 0;
    for (int d = 0; d < D; d++) {
        cr_synth_domain_name(d, m->dom_name[d], sizeof m->dom_name[d]);
        double w = pow(d + 1.0, -DOMAIN_SKEW);
        m->dom_cdf[d] = wsum += w;
    }
    int64_t rest = n - D, given = 0;
    for (int d = 0; d < D; d++) {
        double w = m->dom_cdf[d] - (d ? m->dom_cdf[d - 1] : 0.0);
        m->dom_items[d] = 1 + (int64_t)floor((double)rest * w / wsum);
        given += m->dom_items[d];
    }
    for (int d = 0; given < n; d = (d + 1) % D) m->dom_items[d]++, given++;

    cr_rng r;
    cr_rng_named(&r, p->seed, "synth.items");
    /* Item ids carry no domain order (as in a marketplace catalogue): domains are shuffled over ids. */
    int64_t k = 0;
    for (int d = 0; d < D; d++)
        for (int64_t j = 0; j < m->dom_items[d]; j++) m->item_domain[k++] = d;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)below64(&r, (uint64_t)i + 1);
        int32_t t = m->item_domain[i];
        m->item_domain[i] = m->item_domain[j], m->item_domain[j] = t;
    }
    /* Popularity rank within the domain: visit items in a uniform random order; the k-th item of domain d
     * visited gets rank k, which makes the within-domain ranks a uniform permutation. */
    for (int64_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)below64(&r, (uint64_t)i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (int64_t k2 = 0; k2 < n; k2++) {
        int32_t i = perm[k2];
        int64_t rank = next_rank[m->item_domain[i]]++;
        m->item_pop[i] = pow((double)rank + 1.0, -p->item_zipf);
        /* New arrivals: listed, never interacted with. Zipf alone leaves almost no item without events at
         * realistic densities, yet cold items known only by their text are what cross-domain models are
         * for. The top item of a domain is never new, so every domain keeps something to sample. */
        if (rank > 0 && cr_rng_uniform(&r) < p->new_item_share) m->item_pop[i] = 0.0;
    }
    /* Topic mixture: one main topic; SECOND_TOPIC_P of the items also lean 15..40% to a second one. */
    for (int64_t i = 0; i < n; i++) {
        m->item_t1[i] = (int32_t)cr_rng_below(&r, (uint32_t)K);
        m->item_t2[i] = -1;
        m->item_w2[i] = 0.0f;
        if (K > 1 && cr_rng_uniform(&r) < SECOND_TOPIC_P) {
            int32_t t2 = (int32_t)cr_rng_below(&r, (uint32_t)K - 1);
            m->item_t2[i] = t2 >= m->item_t1[i] ? t2 + 1 : t2;
            m->item_w2[i] = (float)(0.15 + 0.25 * cr_rng_uniform(&r));
        }
    }
    cr_free(next_rank);
    cr_free(perm);
    return CR_OK;
}

/* Per-domain popularity tables and per-(domain, topic) tables. */
static cr_status build_tables(synth_model *m) {
    int D = m->D, K = m->K;
    int64_t n = m->n_items, n_pop_entries = 0, n_topic_entries = 0;
    for (int64_t i = 0; i < n; i++)
        if (m->item_pop[i] > 0) n_pop_entries++, n_topic_entries += 1 + (m->item_t2[i] >= 0);
    cr_status st = alias_alloc(&m->pop_tab, D, n_pop_entries);
    if (st == CR_OK) st = alias_alloc(&m->topic_tab, (int64_t)D * K, n_topic_entries);
    if (st) return st;

    /* counts, then running offsets; off[t+1] serves as the fill cursor of table t */
    int64_t *po = m->pop_tab.off, *to = m->topic_tab.off;
    for (int64_t i = 0; i < n; i++) {
        if (m->item_pop[i] == 0) continue;      /* new arrival */
        int64_t d = m->item_domain[i];
        po[d + 1]++;
        to[d * K + m->item_t1[i] + 1]++;
        if (m->item_t2[i] >= 0) to[d * K + m->item_t2[i] + 1]++;
    }
    int64_t largest = 1;
    for (int d = 0; d < D; d++) {
        if (po[d + 1] > largest) largest = po[d + 1];
        po[d + 1] += po[d];
    }
    int64_t *pcur = cr_malloc((size_t)D * sizeof *pcur);
    int64_t *tcur = cr_malloc((size_t)D * K * sizeof *tcur);
    int32_t *scratch = cr_malloc((size_t)largest * sizeof *scratch);
    if (!pcur || !tcur || !scratch) {
        cr_free(pcur), cr_free(tcur), cr_free(scratch);
        return nomem("sampling tables", (int64_t)D * K);
    }
    for (int64_t t = 0; t < (int64_t)D * K; t++) to[t + 1] += to[t];
    memcpy(pcur, po, (size_t)D * sizeof *pcur);
    memcpy(tcur, to, (size_t)D * K * sizeof *tcur);
    for (int64_t i = 0; i < n; i++) {
        if (m->item_pop[i] == 0) continue;
        int64_t d = m->item_domain[i];
        int64_t s = pcur[d]++;
        m->pop_tab.slot[s].value = (int32_t)i;
        m->pop_tab.slot[s].prob = m->item_pop[i];
        s = tcur[d * K + m->item_t1[i]]++;
        m->topic_tab.slot[s].value = (int32_t)i;
        m->topic_tab.slot[s].prob = m->item_pop[i] * (1.0 - m->item_w2[i]);
        if (m->item_t2[i] >= 0) {
            s = tcur[d * K + m->item_t2[i]]++;
            m->topic_tab.slot[s].value = (int32_t)i;
            m->topic_tab.slot[s].prob = m->item_pop[i] * m->item_w2[i];
        }
    }
    alias_build(&m->pop_tab, scratch);
    alias_build(&m->topic_tab, scratch);    /* each (d, t) table is a subset of domain d: scratch is enough */
    cr_free(pcur), cr_free(tcur), cr_free(scratch);
    return CR_OK;
}

/* ---- vocabulary ---------------------------------------------------------------------------------- */

static void make_word(cr_rng *r, char *buf) {
    int n_syl = cr_rng_below(r, 4) == 0 ? 3 : 2;
    size_t len = 0;
    for (int s = 0; s < n_syl; s++) {
        /* a word may open on a vowel; inside a word every syllable has an onset, so vowels never pile up */
        if (s > 0 || cr_rng_below(r, 6) != 0) {
            const char *o = onsets[cr_rng_below(r, N_ONSETS)];
            memcpy(buf + len, o, strlen(o)), len += strlen(o);
        }
        const char *v = vowels[cr_rng_below(r, N_VOWELS)];
        memcpy(buf + len, v, strlen(v)), len += strlen(v);
        int last = s == n_syl - 1;
        if (cr_rng_uniform(r) < (last ? 0.5 : 0.15)) {
            const char *c = codas[cr_rng_below(r, last ? N_CODAS : 4)];   /* mid-word: only n r l s */
            memcpy(buf + len, c, strlen(c)), len += strlen(c);
        }
    }
    buf[len] = '\0';
}

/* Distinct words: made-up words are checked against all earlier ones (including generic words) through an
 * open-addressing set of word indices + 1. */
static cr_status build_vocab(synth_model *m) {
    int64_t n_made = (int64_t)m->K * WORDS_PER_TOPIC + (int64_t)m->D * WORDS_PER_DOMAIN + FILLER_WORDS;
    int64_t total = N_GENERIC + n_made, cap = 16;
    while (cap < 2 * total) cap *= 2;
    int32_t *set = cr_calloc((size_t)cap, sizeof *set);
    if (!set) return nomem("vocabulary", total);
    cr_rng r;
    cr_rng_named(&r, m->p.seed, "synth.words");
    cr_status st = CR_OK;
    char buf[MAX_WORD];
    for (int64_t w = 0; w < total && st == CR_OK; w++) {
        for (;;) {
            if (w < N_GENERIC) snprintf(buf, sizeof buf, "%s", generic_words[w]);
            else make_word(&r, buf);
            size_t len = strlen(buf);
            uint64_t h = cr_hash64(buf, len) & (uint64_t)(cap - 1);
            int dup = 0;
            while (set[h]) {
                if (!strcmp(cr_strpool_get(&m->words, set[h] - 1), buf)) {
                    dup = 1;
                    break;
                }
                h = (h + 1) & (uint64_t)(cap - 1);
            }
            if (dup) continue;       /* about 10^6 possible words for at most ~50k: retries are rare */
            int64_t idx;
            st = cr_strpool_add(&m->words, buf, len, &idx);
            if (st == CR_OK) set[h] = (int32_t)idx + 1;
            break;
        }
    }
    cr_free(set);
    if (st) return st;
    m->topic_base = N_GENERIC;
    m->domain_base = m->topic_base + (int64_t)m->K * WORDS_PER_TOPIC;
    m->filler_base = m->domain_base + (int64_t)m->D * WORDS_PER_DOMAIN;
    zipf_cdf(m->topic_wcdf, WORDS_PER_TOPIC, WORD_ZIPF);
    zipf_cdf(m->domain_wcdf, WORDS_PER_DOMAIN, WORD_ZIPF);
    zipf_cdf(m->filler_wcdf, FILLER_WORDS, WORD_ZIPF);
    return CR_OK;
}

static int64_t draw_word(const synth_model *m, cr_rng *r, int64_t item) {
    double u = cr_rng_uniform(r);
    if (u < SRC_TOPIC) {
        int64_t t = m->item_t1[item];
        if (m->item_t2[item] >= 0 && cr_rng_uniform(r) < m->item_w2[item]) t = m->item_t2[item];
        return m->topic_base + t * WORDS_PER_TOPIC + cdf_pick(m->topic_wcdf, WORDS_PER_TOPIC, cr_rng_uniform(r));
    }
    if (u < SRC_DOMAIN)
        return m->domain_base + (int64_t)m->item_domain[item] * WORDS_PER_DOMAIN +
               cdf_pick(m->domain_wcdf, WORDS_PER_DOMAIN, cr_rng_uniform(r));
    if (u < SRC_GENERIC) return (int64_t)cr_rng_below(r, N_GENERIC);
    return m->filler_base + cdf_pick(m->filler_wcdf, FILLER_WORDS, cr_rng_uniform(r));
}

/* ---- buffered output to NAME.tmp; renamed by cr_synth_write once both files are complete ------------- */

#define OUT_BUF   (1 << 20)
#define OUT_SLACK 4096      /* longest line we build: ids + 33 words of < MAX_WORD bytes + domain name */

typedef struct {
    FILE *f;
    const char *tmp;        /* path being written (not owned) */
    char *buf;              /* (OUT_BUF) */
    size_t n;
    int err;                /* errno of the first failed write, 0 when none */
} synth_out;

static cr_status out_open(synth_out *o, const char *tmp) {
    memset(o, 0, sizeof *o);
    o->tmp = tmp;
    o->buf = cr_malloc(OUT_BUF);
    if (!o->buf) return nomem("output buffer", OUT_BUF);
    o->f = fopen(tmp, "wb");
    if (!o->f) return cr_fail(CR_ERR_IO, "%s: %s", tmp, strerror(errno));
    return CR_OK;
}

static void out_flush(synth_out *o) {
    if (o->n && !o->err && fwrite(o->buf, 1, o->n, o->f) != o->n) o->err = errno ? errno : EIO;
    o->n = 0;
}

/* Room for one more line. */
static inline void out_reserve(synth_out *o) {
    if (o->n + OUT_SLACK > OUT_BUF) out_flush(o);
}

static inline void out_puts(synth_out *o, const char *s, size_t len) {
    memcpy(o->buf + o->n, s, len);
    o->n += len;
}

/* Zero-padded decimal of at least `width` digits. */
static inline void out_num(synth_out *o, uint64_t v, int width) {
    char tmp[24];
    int k = 0;
    do tmp[k++] = (char)('0' + v % 10), v /= 10;
    while (v);
    while (k < width) tmp[k++] = '0';
    while (k) o->buf[o->n++] = tmp[--k];
}

/* Flushes (when st is CR_OK) and closes; turns a failed write or close into CR_ERR_IO naming the file.
 * Frees the buffer. No fsync: the data is regenerated from its parameters at will, and the rename already
 * keeps a crashed run from leaving a partial file under the final name. */
static cr_status out_close(synth_out *o, cr_status st) {
    if (o->f) {
        if (st == CR_OK) out_flush(o);
        if (fclose(o->f) != 0 && !o->err) o->err = errno ? errno : EIO;
        if (st == CR_OK && o->err) st = cr_fail(CR_ERR_IO, "%s: %s", o->tmp, strerror(o->err));
    }
    cr_free(o->buf);
    memset(o, 0, sizeof *o);
    return st;
}

static int digits(int64_t n) {
    int k = 1;
    while (n >= 10) n /= 10, k++;
    return k;
}


/* ---- items.tsv ----------------------------------------------------------------------------------- */

static void put_words(synth_out *o, const synth_model *m, cr_rng *r, int64_t item, int n_words) {
    int64_t used[32];
    for (int k = 0; k < n_words; k++) {
        int64_t w = draw_word(m, r, item);
        /* a few redraws keep words from repeating inside one line, as in real titles */
        for (int tries = 0; tries < 4; tries++) {
            int seen = 0;
            for (int j = 0; j < k; j++) seen |= used[j] == w;
            if (!seen) break;
            w = draw_word(m, r, item);
        }
        used[k] = w;
        if (k) out_puts(o, " ", 1);
        out_puts(o, cr_strpool_get(&m->words, w), (size_t)cr_strpool_len(&m->words, w));
    }
}

static cr_status write_items(const char *tmp, const synth_model *m) {
    synth_out o;
    cr_status st = out_open(&o, tmp);
    if (st) return out_close(&o, st);
    cr_rng r;
    cr_rng_named(&r, m->p.seed, "synth.text");
    int width = digits(m->n_items - 1) > 6 ? digits(m->n_items - 1) : 6;
    static const char header[] = "item\tdomain\ttitle\ttext\n";
    out_puts(&o, header, sizeof header - 1);
    for (int64_t i = 0; i < m->n_items && !o.err; i++) {
        out_reserve(&o);
        const char *dname = m->dom_name[m->item_domain[i]];
        size_t dlen = strlen(dname);
        out_puts(&o, "i", 1);
        out_num(&o, (uint64_t)i, width);
        out_puts(&o, "\t", 1);
        out_puts(&o, dname, dlen);
        out_puts(&o, "\t", 1);
        put_words(&o, m, &r, i, 3 + (int)cr_rng_below(&r, 6));      /* title: 3..8 words */
        out_puts(&o, "\t", 1);
        put_words(&o, m, &r, i, 10 + (int)cr_rng_below(&r, 16));    /* text: 10..25 words */
        out_puts(&o, " domain: ", 9);
        out_puts(&o, dname, dlen);
        out_puts(&o, "\n", 1);
    }
    return out_close(&o, CR_OK);
}

/* ---- interactions.tsv ---------------------------------------------------------------------------- */

/* Users: active domain counts (stream "synth.users"), Zipf activity with a random rank, and event counts
 * (stream "synth.activity"). count[u] >= n_active[u] >= 1 and sum(count) == n_inter. */
static cr_status plan_users(const synth_model *m, int32_t *n_active, int64_t *count) {
    const cr_synth_params *p = &m->p;
    int64_t nu = p->n_users;
    cr_rng r;
    cr_rng_named(&r, p->seed, "synth.users");
    int max_active = m->D < MAX_ACTIVE ? m->D : MAX_ACTIVE;
    int64_t min_total = 0;
    for (int64_t u = 0; u < nu; u++) {
        int k = 1;
        if (max_active > 1 && cr_rng_uniform(&r) < p->multi_domain_share) {
            k = 2;
            while (k < max_active && cr_rng_uniform(&r) < EXTRA_DOMAIN_P) k++;
        }
        n_active[u] = k;
        min_total += k;
    }
    /* Too few events for every active domain: drop extra domains, first users first. */
    for (int64_t u = 0; u < nu && min_total > p->n_inter; u++)
        while (n_active[u] > 1 && min_total > p->n_inter) n_active[u]--, min_total--;

    /* Activity weight (rank + 1 + k0)^-user_zipf over a random rank. The offset k0 = n_users/100 flattens the
     * very top (Zipf-Mandelbrot): without it the top user of 3000 would hold ~4% of all events, far more than
     * any real shopper, and would have to repeat items. */
    alias_set act;
    memset(&act, 0, sizeof act);
    cr_status st = alias_alloc(&act, 1, nu);
    int32_t *scratch = cr_malloc((size_t)nu * sizeof *scratch);
    if (st || !scratch) {
        alias_free(&act);
        cr_free(scratch);
        return st ? st : nomem("users", nu);
    }
    act.off[1] = nu;
    for (int64_t u = 0; u < nu; u++) act.slot[u].value = (int32_t)u;
    for (int64_t u = nu - 1; u > 0; u--) {
        int64_t j = (int64_t)below64(&r, (uint64_t)u + 1);
        int32_t t = act.slot[u].value;
        act.slot[u].value = act.slot[j].value, act.slot[j].value = t;
    }
    double k0 = (double)(nu / 100);
    for (int64_t rank = 0; rank < nu; rank++) act.slot[rank].prob = pow((double)rank + 1.0 + k0, -p->user_zipf);
    alias_build(&act, scratch);
    cr_free(scratch);

    /* The remaining events go to users by their activity weight (a multinomial draw, event by event). */
    cr_rng_named(&r, p->seed, "synth.activity");
    for (int64_t u = 0; u < nu; u++) count[u] = n_active[u];
    for (int64_t e = min_total; e < p->n_inter; e++) count[alias_draw(&act, 0, &r)]++;
    alias_free(&act);
    return CR_OK;
}

static cr_status write_interactions(const char *tmp, const synth_model *m) {
    const cr_synth_params *p = &m->p;
    int64_t nu = p->n_users, n_items = m->n_items;
    int K = m->K;
    int32_t *n_active = cr_malloc((size_t)nu * sizeof *n_active);
    int64_t *count = cr_malloc((size_t)nu * sizeof *count);
    if (!n_active || !count) {
        cr_free(n_active), cr_free(count);
        return nomem("users", nu);
    }
    cr_status st = plan_users(m, n_active, count);
    if (st) {
        cr_free(n_active), cr_free(count);
        return st;
    }

    /* "Seen" set per user, open addressing on item; a slot belongs to the current user only when its stamp
     * equals the user index, so the table is never cleared. A user holds at most min(count, n_items)
     * distinct items, so twice that, rounded to a power of two, keeps it at most half full. */
    int64_t max_count = 0;
    for (int64_t u = 0; u < nu; u++)
        if (count[u] > max_count) max_count = count[u];
    int64_t max_distinct = max_count < n_items ? max_count : n_items, cap = 16;
    while (cap < 2 * max_distinct) cap *= 2;
    int32_t *seen_item = cr_malloc((size_t)cap * sizeof *seen_item);
    int32_t *seen_user = cr_malloc((size_t)cap * sizeof *seen_user);
    synth_out o;
    memset(&o, 0, sizeof o);
    if (!seen_item || !seen_user) st = nomem("per-user item set", cap);
    if (st == CR_OK) st = out_open(&o, tmp);
    if (st) {
        cr_free(n_active), cr_free(count), cr_free(seen_item), cr_free(seen_user);
        return out_close(&o, st);
    }
    for (int64_t s = 0; s < cap; s++) seen_user[s] = -1;

    cr_rng r;
    cr_rng_named(&r, p->seed, "synth.events");
    int uw = digits(nu - 1) > 6 ? digits(nu - 1) : 6, iw = digits(n_items - 1) > 6 ? digits(n_items - 1) : 6;
    static const char header[] = "user\titem\ttimestamp\tvalue\n";
    out_puts(&o, header, sizeof header - 1);
    int64_t written = 0;

    for (int64_t u = 0; u < nu && !o.err; u++) {
        /* Active domains: the home domain and extras, each drawn by domain weight, distinct. The home
         * domain gets weight 1, the others 0.3..1, so users lean to one domain as real shoppers do. */
        int na = n_active[u];
        int32_t act[MAX_ACTIVE];
        double act_cdf[MAX_ACTIVE];
        for (int k = 0; k < na;) {
            int32_t d = (int32_t)cdf_pick(m->dom_cdf, m->D, cr_rng_uniform(&r));
            int dup = 0;
            for (int j = 0; j < k; j++) dup |= act[j] == d;
            if (dup) continue;
            double w = k == 0 ? 1.0 : 0.3 + 0.7 * cr_rng_uniform(&r);
            act_cdf[k] = (k ? act_cdf[k - 1] : 0.0) + w;
            act[k++] = d;
        }
        /* Topic taste: 1..MAX_LIKED_TOPICS distinct liked topics (geometric), gamma(PREF_SHAPE) weights —
         * a sparse Dirichlet draw — plus PREF_EPS of uniform draws. Shared by all the user's domains. */
        int max_liked = K < MAX_LIKED_TOPICS ? K : MAX_LIKED_TOPICS, nl = 1;
        while (nl < max_liked && cr_rng_uniform(&r) < 0.5) nl++;
        int32_t liked[MAX_LIKED_TOPICS];
        double liked_cdf[MAX_LIKED_TOPICS], acc = 0;
        for (int k = 0; k < nl;) {
            int32_t t = (int32_t)cr_rng_below(&r, (uint32_t)K);
            int dup = 0;
            for (int j = 0; j < k; j++) dup |= liked[j] == t;
            if (dup) continue;
            liked[k] = t;
            liked_cdf[k++] = acc += gamma_draw(&r, PREF_SHAPE);
        }
        if (!(acc > 0))     /* every gamma underflowed (astronomically rare): equal weights */
            for (int k = 0; k < nl; k++) liked_cdf[k] = k + 1.0;
        /* Each active domain gets one event at a distinct random position, so it shows in the file. */
        int64_t cu = count[u];
        int64_t forced[MAX_ACTIVE];
        for (int k = 0; k < na;) {
            int64_t pos = (int64_t)below64(&r, (uint64_t)cu);
            int dup = 0;
            for (int j = 0; j < k; j++) dup |= forced[j] == pos;
            if (!dup) forced[k++] = pos;
        }
        int64_t mask = 16;
        while (mask < 2 * (cu < n_items ? cu : n_items)) mask *= 2;
        mask--;
        int64_t t = T0 + (int64_t)below64(&r, (uint64_t)START_SPAN);

        for (int64_t e = 0; e < cu; e++) {
            int32_t d = -1;
            for (int k = 0; k < na; k++)
                if (forced[k] == e) d = act[k];
            if (d < 0) d = act[na == 1 ? 0 : cdf_pick(act_cdf, na, cr_rng_uniform(&r))];
            int32_t item = -1;
            int64_t slot = 0;
            for (int tries = 0; tries < MAX_TRIES; tries++) {
                int64_t tab = -1;
                if (cr_rng_uniform(&r) < p->topic_share) {
                    int64_t topic = cr_rng_uniform(&r) < PREF_EPS ? (int64_t)cr_rng_below(&r, (uint32_t)K)
                                                                 : liked[cdf_pick(liked_cdf, nl, cr_rng_uniform(&r))];
                    tab = (int64_t)d * K + topic;
                    /* no item of this domain has this topic: fall back to popularity */
                    if (m->topic_tab.off[tab] == m->topic_tab.off[tab + 1]) tab = -1;
                }
                item = tab >= 0 ? alias_draw(&m->topic_tab, tab, &r) : alias_draw(&m->pop_tab, d, &r);
                slot = (int64_t)(((uint32_t)item * 2654435761u) & (uint64_t)mask);
                while (seen_user[slot] == (int32_t)u && seen_item[slot] != item) slot = (slot + 1) & mask;
                if (seen_user[slot] != (int32_t)u) break;     /* new to this user */
            }
            if (seen_user[slot] != (int32_t)u) seen_user[slot] = (int32_t)u, seen_item[slot] = item;
            t += 60 + (int64_t)(MEAN_GAP * -log(1.0 - cr_rng_uniform(&r)));

            out_reserve(&o);
            out_puts(&o, "u", 1);
            out_num(&o, (uint64_t)u, uw);
            out_puts(&o, "\ti", 2);
            out_num(&o, (uint64_t)item, iw);
            out_puts(&o, "\t", 1);
            out_num(&o, (uint64_t)t, 1);
            out_puts(&o, "\t1\n", 3);
            written++;
        }
    }
    if (!o.err) CR_ASSERT(written == p->n_inter);
    cr_free(n_active), cr_free(count), cr_free(seen_item), cr_free(seen_user);
    return out_close(&o, CR_OK);
}

/* ---- entry points -------------------------------------------------------------------------------- */

/* Both files are written as NAME.tmp and renamed only when both are complete, so a failed run never leaves a
 * partial file, nor a new items.tsv beside an old interactions.tsv. */
cr_status cr_synth_write(const char *dir, const cr_synth_params *p) {
    const char *bad = cr_synth_check_params(p);
    if (bad) return cr_fail(CR_ERR_ARG, "synth: %s", bad);
    if (!dir) return cr_fail(CR_ERR_ARG, "synth: no output directory");
    cr_status st = cr_mkdirs(dir);
    if (st) return st;
    static const char *const names[2] = {"interactions.tsv", "items.tsv"};
    char *path[2] = {NULL, NULL}, *tmp[2] = {NULL, NULL};
    size_t len = strlen(dir) + 32;
    for (int k = 0; k < 2; k++) {
        path[k] = cr_malloc(len), tmp[k] = cr_malloc(len);
        if (!path[k] || !tmp[k]) {
            st = nomem("paths", (int64_t)len);
            break;
        }
        snprintf(path[k], len, "%s/%s", dir, names[k]);
        snprintf(tmp[k], len, "%s/%s.tmp", dir, names[k]);
    }
    synth_model m;
    memset(&m, 0, sizeof m);
    if (st == CR_OK) st = build_items(&m, p);
    if (st == CR_OK) st = build_tables(&m);
    if (st == CR_OK) st = build_vocab(&m);
    int written = 0;        /* tmp files that may exist */
    if (st == CR_OK) written = 1, st = write_items(tmp[1], &m);
    if (st == CR_OK) written = 2, st = write_interactions(tmp[0], &m);
    for (int k = 0; k < 2 && st == CR_OK; k++)
        if (rename(tmp[k], path[k]) != 0)
            st = cr_fail(CR_ERR_IO, "%s: cannot rename to %s: %s", tmp[k], path[k], strerror(errno));
    if (st != CR_OK) {
        if (written >= 1) remove(tmp[1]);
        if (written >= 2) remove(tmp[0]);
    }
    model_free(&m);
    for (int k = 0; k < 2; k++) cr_free(path[k]), cr_free(tmp[k]);
    return st;
}

cr_status cr_synth_item_latents(const cr_synth_params *p, int32_t *domain, int32_t *main_topic,
                                int32_t *second_topic) {
    const char *bad = cr_synth_check_params(p);
    if (bad) return cr_fail(CR_ERR_ARG, "synth: %s", bad);
    synth_model m;
    cr_status st = build_items(&m, p);
    if (st == CR_OK) {
        size_t bytes = (size_t)p->n_items * sizeof(int32_t);
        if (domain) memcpy(domain, m.item_domain, bytes);
        if (main_topic) memcpy(main_topic, m.item_t1, bytes);
        if (second_topic) memcpy(second_topic, m.item_t2, bytes);
    }
    model_free(&m);
    return st;
}
