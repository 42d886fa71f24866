/* cmd_train.c — `crossrec train`: fit a model on the training part of a split and write it as a .crm. */
#include "cli.h"
#include "crossrec/model.h"
#include "crossrec/split.h"
#include "crossrec/train.h"

#include <stdio.h>
#include <string.h>

static const cli_cmd_info info = {
    "train",
    "train split.crs --model pop|itemknn|bpr|als|cmf|emcdr|ptupcdr|tower [--domain all|T] [options] -o model.crm\n"
    "       train split.crs --resume run.crt -o model.crm",
    "Fits a model on the training events of a split (never its held-out events) and writes it to a model file.\n"
    "  pop       items ranked by training events (--pop-by-domain: by their share of their domain's events)\n"
    "  itemknn   item-item cosine on co-occurrence, --neighbors per item and domain; scores a user from its history in\n"
    "            any domain, so users cold in the target domain are scored through the other domains\n"
    "  bpr       BPR matrix factorisation with sampled negatives (--optimizer, --lr, --neg-alpha)\n"
    "  als       implicit ALS, confidence 1 + alpha * value, conjugate gradient; users unseen in training are\n"
    "            folded in from their history\n"
    "  cmf       collective MF: BPR with user factors shared by all domains; source-domain events (outside --domain,\n"
    "            else the split's target) weigh --source-weight, so users cold in the target are scored\n"
    "  emcdr     BPR-MF on the target and on the other domains, then an MLP maps source to target user factors\n"
    "            (learned on users in both; --epochs counts BPR and mapping epochs), so target-cold users are scored\n"
    "  ptupcdr   emcdr's two BPR-MF sides, then a personalised bridge: a meta network turns an attention-pooled\n"
    "            summary of the user's source items into the user's own mapping matrix, trained with BPR on the\n"
    "            target events of users in both (--dim at most 256)\n"
    "  tower     crossrec's transfer model: one item tower for all domains (id, hashed text, domain), a user tower\n"
    "            pooling the item vectors of the user's history in any domain, a head per target domain; trained\n"
    "            with in-batch softmax and cold-start simulation, so cold users and new items are scored\n"
    "bpr, als and cmf stop early when the split's validation users stop improving (NDCG@10, --patience).\n"
    "--domain T trains on the events of domain T only (the target-only variant of a baseline); for cmf it names\n"
    "the target domain and every domain is trained.\n"
    "bpr, als, cmf, emcdr and ptupcdr train in epochs: --checkpoint run.crt saves the training state after each,\n"
    "and --resume run.crt continues the run exactly where it stopped (same result as an uninterrupted run).",
};

static int unknown_model(const char *name) {
    const char *const *names = cr_model_names();
    char list[256];
    size_t n = 0;
    const char *best = NULL;
    int best_d = 1 << 30;
    list[0] = '\0';
    for (int i = 0; names[i]; i++) {
        n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s", i ? ", " : "", names[i]);
        if (n >= sizeof list) n = sizeof list - 1;
        int d = cli_edit_distance(name, names[i]);
        if (d < best_d) best_d = d, best = names[i];
    }
    if (best && best_d <= 2) return cli_usage_error(&info, "unknown model '%s' (did you mean %s?); models: %s", name, best, list);
    return cli_usage_error(&info, "unknown model '%s'; models: %s", name, list);
}

/* Sets *out to the index of the domain named `name` (-1 for "all") and returns 0, or prints a usage error
 * naming the dataset's domains and returns its exit code. */
static int resolve_domain(const cr_dataset *d, const char *name, int32_t *out) {
    *out = -1;
    if (!strcmp(name, "all")) return 0;
    int32_t t = cr_dataset_find_domain(d, name);
    if (t >= 0) {
        *out = t;
        return 0;
    }
    const cr_interactions *v = cr_dataset_inter(d);
    char list[1024];
    size_t n = 0;
    list[0] = '\0';
    for (int64_t k = 0; k < v->n_domains; k++) {
        const char *dn = cr_dataset_domain_name(d, (int32_t)k);
        if (n + strlen(dn) + 8 > sizeof list) {     /* keep room for ", ..." */
            snprintf(list + n, sizeof list - n, ", ...");
            break;
        }
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", k ? ", " : "", dn);
    }
    int best = -1, best_d = 1 << 30;
    for (int64_t k = 0; k < v->n_domains; k++) {
        int dist = cli_edit_distance(name, cr_dataset_domain_name(d, (int32_t)k));
        if (dist < best_d) best_d = dist, best = (int)k;
    }
    if (best >= 0 && best_d <= 2)
        return cli_usage_error(&info, "--domain '%s' is not a domain of the dataset (did you mean %s?); domains: %s, or all", name,
                               cr_dataset_domain_name(d, best), list);
    return cli_usage_error(&info, "--domain '%s' is not a domain of the dataset; domains: %s, or all", name, list);
}

/* The value of --resume in argv, or NULL: read before the options are parsed, because the resumed run's
 * settings become the defaults of the others. */
static const char *resume_arg(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--resume")) return i + 1 < argc ? argv[i + 1] : NULL;
        if (!strncmp(argv[i], "--resume=", 9)) return argv[i] + 9;
    }
    return NULL;
}

int cmd_train(int argc, char **argv) {
    cr_train_params p = cr_train_default_params();
    const char *model = NULL, *domain = "all", *output = NULL, *resume = resume_arg(argc, argv);
    if (resume) {
        cr_status st = cr_train_state_params(resume, &p);
        if (st) return cli_fail(st);
        model = p.model;
        domain = NULL;      /* the run's own domain unless --domain is given */
    }
    int64_t neighbors = p.knn_neighbors, threads = p.threads, seed = (int64_t)p.seed, patience = p.patience;
    int quiet = 0;
    const cli_opt opts[] = {
        {"model", 0, CLI_STR, &model, NULL, 0, "NAME", "model type: pop, itemknn, bpr, als, cmf, emcdr, ptupcdr or tower"},
        {"domain", 0, CLI_STR, &domain, NULL, 0, "T", "train on the events of domain T only, or all"},
        {"pop-by-domain", 0, CLI_FLAG, &p.pop_by_domain, NULL, 0, NULL, "pop: score = share of the item's domain's events"},
        {"neighbors", 0, CLI_INT, &neighbors, NULL, 0, "K", "itemknn: neighbours kept per item in each domain"},
        {"shrink", 0, CLI_F64, &p.knn_shrink, NULL, 0, "X", "itemknn: cosine shrinkage, co / (sqrt(n_i n_j) + X)"},
        {"dim", 0, CLI_INT, &p.dim, NULL, 0, "D", "bpr, als, cmf, emcdr, ptupcdr, tower: factors (vector size) per user and item"},
        {"epochs", 0, CLI_INT, &p.epochs, NULL, 0, "N", "bpr, als, cmf, emcdr, ptupcdr, tower: at most this many epochs"},
        {"patience", 0, CLI_INT, &patience, NULL, 0, "N", "early stopping: stop after N epochs without better validation NDCG@10 and keep the best (0: run all epochs, keep the last)"},
        {"optimizer", 0, CLI_STR, &p.optimizer, NULL, 0, "NAME", "bpr, cmf, tower: sgd, adagrad or adam (default: adagrad for bpr and cmf, adam for tower)"},
        {"lr", 0, CLI_F64, &p.lr, NULL, 0, "X", "learning rate (0: the model's default: bpr and cmf 0.05, tower 0.002)"},
        {"reg", 0, CLI_F64, &p.reg, NULL, 0, "X", "L2 regularisation (negative: bpr 1e-4, als 0.01)"},
        {"neg-alpha", 0, CLI_F64, &p.neg_alpha, NULL, 0, "X", "bpr: negatives ~ (count + 1)^X (0 uniform)"},
        {"in-batch", 0, CLI_INT, &p.inbatch, NULL, 0, "B", "bpr/cmf: negatives from other positives of batches of B (0: off)"},
        {"alpha", 0, CLI_F64, &p.als_alpha, NULL, 0, "X", "als: confidence 1 + X * value"},
        {"source-weight", 0, CLI_F64, &p.source_weight, NULL, 0, "X", "cmf: loss weight of non-target events (0: target only)"},
        {"cg-steps", 0, CLI_INT, &p.cg_steps, NULL, 0, "N", "als: conjugate-gradient steps per solve"},
        {"pool", 0, CLI_STR, &p.pool, NULL, 0, "NAME", "tower: history pooling, mean, attention or transformer"},
        {"hist-len", 0, CLI_INT, &p.hist_len, NULL, 0, "L", "tower: most recent history items per user (any domain)"},
        {"batch", 0, CLI_INT, &p.batch, NULL, 0, "B", "tower: examples per batch (in-batch negatives)"},
        {"negatives", 0, CLI_INT, &p.negatives, NULL, 0, "N", "tower: extra negatives per batch, uniform over the target domain's items"},
        {"cold-sim", 0, CLI_F64, &p.cold_sim, NULL, 0, "X", "tower: share of examples trained without target-domain history"},
        {"id-dropout", 0, CLI_F64, &p.id_dropout, NULL, 0, "X", "tower: probability an item's id embedding is left out in training"},
        {"hist-dropout", 0, CLI_F64, &p.hist_dropout, NULL, 0, "X", "tower: probability a history item is left out of a training example"},
        {"temperature", 0, CLI_F64, &p.temperature, NULL, 0, "X", "tower: softmax temperature over cosine scores"},
        {"text-buckets", 0, CLI_INT, &p.text_buckets, NULL, 0, "N", "tower: hashed text features (0: no text)"},
        {"text-per-item", 0, CLI_INT, &p.text_per_item, NULL, 0, "N", "tower: text features kept per item (highest TF-IDF)"},
        {"dann", 0, CLI_F64, &p.dann, NULL, 0, "W", "tower: weight of adversarial domain alignment (0: off)"},
        {"align", 0, CLI_F64, &p.align, NULL, 0, "W", "tower: weight of text-id contrastive alignment (0: off)"},
        {"item-vectors", 0, CLI_STR, &p.item_vectors, NULL, 0, "SPEC", "tower: dense item vectors, FILE.npy or an embed method (minilm, hash-tfidf, wordvec:FILE)"},
        {"user-id", 0, CLI_FLAG, &p.user_id, NULL, 0, NULL, "tower: a user embedding for users with training events"},
        {"loss", 0, CLI_STR, &p.loss, NULL, 0, "NAME", "tower: softmax (in-batch sampled softmax) or bpr"},
        {"init", 0, CLI_STR, &p.init, NULL, 0, "FILE", "tower: start from this tower model (pretrained on source domains or another dataset)"},
        {"finetune", 0, CLI_STR, &p.finetune, NULL, 0, "MODE", "tower with --init: all, head (towers frozen) or none (no training)"},
        {"distill", 0, CLI_STR, &p.distill, NULL, 0, "FILE", "tower: learn from this teacher tower's softmax (e.g. a larger --dim)"},
        {"distill-weight", 0, CLI_F64, &p.distill_weight, NULL, 0, "X", "tower: share of the teacher's soft targets in the loss"},
        {"log", 0, CLI_STR, &p.log_path, NULL, 0, "FILE", "one TSV row per epoch"},
        {"hogwild", 0, CLI_FLAG, &p.hogwild, NULL, 0, NULL, "bpr/cmf: lock-free updates on --threads workers (not deterministic)"},
        {"checkpoint", 0, CLI_STR, &p.checkpoint, NULL, 0, "FILE", "write the training state (.crt) here after every epoch"},
        {"resume", 0, CLI_STR, &p.resume, NULL, 0, "FILE", "continue the run whose state is in FILE (its settings are the defaults)"},
        {"pause-after", 0, CLI_INT, &p.pause_after, NULL, 0, "N", "stop after N epochs of this run, to --resume later (0: off)"},
        {"threads", 0, CLI_INT, &threads, NULL, 0, "N", "training threads (0: all cores)"},
        {"seed", 0, CLI_INT, &seed, NULL, 0, "N", "random seed (models that draw random numbers)"},
        {"output", 'o', CLI_STR, &output, NULL, 0, "FILE", "model file to write (.crm)"},
        {"quiet", 'q', CLI_FLAG, &quiet, NULL, 0, NULL, "print nothing on success"},
        {0},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 1) return cli_usage_error(&info, "give one split file (.crs)");
    if (!model) return cli_usage_error(&info, "give --model (pop, itemknn, bpr, als, cmf, emcdr, ptupcdr or tower)");
    int known = 0;
    for (const char *const *n = cr_model_names(); *n; n++) known |= !strcmp(*n, model);
    if (!known) return unknown_model(model);
    if (neighbors < 1 || neighbors > INT32_MAX) return cli_usage_error(&info, "--neighbors must be at least 1");
    if (!(p.knn_shrink >= 0) || p.knn_shrink > 1e300) return cli_usage_error(&info, "--shrink must be a number >= 0");
    if (threads < 0 || threads > 4096) return cli_usage_error(&info, "--threads must be 0..4096");
    if (seed < 0) return cli_usage_error(&info, "--seed must be >= 0");
    if (!output) return cli_usage_error(&info, "no output file: give -o model.crm");
    if (patience < 0 || patience > 1000000) return cli_usage_error(&info, "--patience must be >= 0");
    if (p.pause_after < 0) return cli_usage_error(&info, "--pause-after must be >= 0");
    if (p.resume && !p.checkpoint) p.checkpoint = p.resume;     /* the resumed run goes on saving its state there */
    if (p.pause_after && !p.checkpoint)
        return cli_usage_error(&info, "--pause-after needs --checkpoint FILE, where the run's state goes to be resumed");
    p.patience = (int)patience;
    p.quiet = quiet;
    p.model = model;
    p.knn_neighbors = neighbors;
    p.threads = (int)threads;
    p.seed = (uint64_t)seed;

    cr_split *s;
    cr_status st = cr_split_load(&s, pos[0]);
    if (st) return cli_fail(st);
    const cr_dataset *d = cr_split_dataset(s);
    if (domain && (rc = resolve_domain(d, domain, &p.domain))) {
        cr_split_free(s);
        return rc;
    }
    const cr_interactions *train = cr_split_train(s);
    p.valid = s;   /* early stopping looks at the split's validation users, never at its test users */
    int64_t events = 0;     /* the events the model actually sees */
    for (int64_t e = 0; e < train->n_inter; e++) events += p.domain < 0 || train->item_domain[train->user_items[e]] == p.domain;

    double t0 = cr_now();
    cli_progress pr;
    p.progress = cli_progress_start(&pr, "train", "epoch", quiet);
    cr_model *m = NULL;
    if (!(st = cr_model_train(&m, d, train, &p))) st = cr_model_save(m, output);
    double secs = cr_now() - t0;
    cr_model_free(m);
    if (st) {
        cli_progress_end(&pr, stderr, NULL);
        cr_split_free(s);
        return cli_fail(st);
    }
    char settings[256], num[32];
    const char *dom = p.domain >= 0 ? cr_dataset_domain_name(d, p.domain) : NULL;
    if (!strcmp(model, "itemknn"))
        snprintf(settings, sizeof settings, "%lld neighbours per domain, shrink %g, %s%s", (long long)neighbors, p.knn_shrink,
                 dom ? "domain " : "all domains", dom ? dom : "");
    else if (!strcmp(model, "pop"))
        snprintf(settings, sizeof settings, "%s%s%s", p.pop_by_domain ? "by domain, " : "", dom ? "domain " : "all domains",
                 dom ? dom : "");
    else
        snprintf(settings, sizeof settings, "%s%s", dom ? "domain " : "all domains", dom ? dom : "");
    cli_progress_end(&pr, stdout, "trained %s (%s) on %s training events in %.2f s -> %s", model, settings,
                     cli_commas(events, num, sizeof num), secs, output);
    if (p.pause_after && !quiet) printf("training state -> %s (continue with: crossrec train %s --resume %s -o %s)\n", p.checkpoint, pos[0], p.checkpoint, output);
    cr_split_free(s);
    return 0;
}
