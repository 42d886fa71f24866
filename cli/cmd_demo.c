/* cmd_demo.c — `crossrec demo`: the pipeline end to end on built-in synthetic data. */
#include "cli.h"
#include "crossrec/eval.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const cli_cmd_info info = {
    "demo",
    "demo [--dir DIR] [--seed N]",
    "Generates a synthetic multi-domain dataset (shared latent topics, Zipf popularity, titles that carry the\n"
    "topics), imports and describes it, holds out users cold in the thinnest domain (cold-user protocol), trains\n"
    "the baselines and compares them. Writes everything under DIR.",
};

int cmd_demo(int argc, char **argv) {
    const char *dir = "demo";
    cr_synth_params sp = cr_synth_default_params();
    int64_t seed = (int64_t)sp.seed;
    const cli_opt opts[] = {
        {"dir", 0, CLI_STR, &dir, NULL, 0, "DIR", "where to write the demo files"},
        {"seed", 0, CLI_INT, &seed, NULL, 0, "N", "random seed"},
        {0},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, 0, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    sp.seed = (uint64_t)seed;
    double t0 = cr_now();

    char data_dir[4096], inter[4200], items[4200], crd[4200];
    snprintf(data_dir, sizeof data_dir, "%s/data", dir);
    snprintf(inter, sizeof inter, "%s/interactions.tsv", data_dir);
    snprintf(items, sizeof items, "%s/items.tsv", data_dir);
    snprintf(crd, sizeof crd, "%s/data.crd", dir);
    printf("== 1. synthetic data: %lld users, %lld items, %d domains, %lld interactions (seed %llu)\n", (long long)sp.n_users,
           (long long)sp.n_items, sp.n_domains, (long long)sp.n_inter, (unsigned long long)sp.seed);
    cr_status st = cr_synth_write(data_dir, &sp);
    if (st) return cli_fail(st);
    printf("   wrote %s and %s\n", inter, items);

    printf("== 2. import\n");
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = inter;
    ip.items[ip.n_items++] = items;
    cr_dataset *d;
    cr_import_report rep;
    if ((st = cr_dataset_import(&d, &ip, &rep))) return cli_fail(st);
    if ((st = cr_dataset_save(d, crd))) {
        cr_dataset_free(d);
        return cli_fail(st);
    }
    printf("   %s: %lld lines read\n", crd, (long long)rep.lines);

    printf("== 3. statistics\n");
    cr_stats s;
    if ((st = cr_dataset_stats(d, &s))) {
        cr_dataset_free(d);
        return cli_fail(st);
    }
    cr_stats_print(d, &s, stdout);
    /* the thinnest domain (fewest events) is the target: where transfer matters */
    int32_t target = 0;
    for (int32_t k = 1; k < (int32_t)s.n_domains; k++)
        if (s.dom[k].inter < s.dom[target].inter) target = k;
    cr_stats_free(&s);
    cr_dataset_free(d);

    char target_name[256], crs[4200];
    if ((st = cr_dataset_load(&d, crd))) return cli_fail(st);
    snprintf(target_name, sizeof target_name, "%s", cr_dataset_domain_name(d, target));
    snprintf(crs, sizeof crs, "%s/cold-%s.crs", dir, target_name);
    printf("\n== 4. split: cold-user on '%s' (20%% of the users active there and elsewhere lose their '%s' history)\n",
           target_name, target_name);
    cr_split_params pp = cr_split_default_params();
    pp.protocol = CR_PROTO_COLD_USER;
    pp.target = target_name;
    pp.seed = sp.seed;
    cr_split *split;
    if ((st = cr_split_make(&split, d, &pp)) || (st = cr_split_save(split, crs))) {
        cr_dataset_free(d);
        return cli_fail(st);
    }
    printf("   %s: %lld test users\n", crs, (long long)cr_split_truth(split, CR_PART_TEST)->n_users);

    printf("\n== 5. baselines, evaluated on the test users (full ranking of '%s', ties against the model)\n", target_name);
    static const char *const models[] = {"pop", "itemknn"};
    printf("   %-10s %10s %10s %10s %10s\n", "model", "recall@10", "ndcg@10", "recall@50", "ndcg@50");
    for (int k = 0; k < 2 && !st; k++) {
        cr_train_params tp = cr_train_default_params();
        tp.model = models[k];
        cr_model *m;
        cr_eval_result *r;
        if ((st = cr_model_train(&m, d, cr_split_train(split), &tp))) break;
        char path[4300];
        snprintf(path, sizeof path, "%s/%s.crm", dir, models[k]);
        cr_eval_params ep = cr_eval_default_params();
        ep.ks[0] = 10, ep.ks[1] = 50, ep.n_k = 2;
        if (!(st = cr_model_save(m, path)) && !(st = cr_evaluate(split, m, &ep, &r))) {
            printf("   %-10s %10.4f %10.4f %10.4f %10.4f\n", models[k], r->mean.recall[0], r->mean.ndcg[0], r->mean.recall[1],
                   r->mean.ndcg[1]);
            cr_eval_result_free(r);
        }
        cr_model_free(m);
    }
    cr_split_free(split);
    cr_dataset_free(d);
    if (st) return cli_fail(st);

    printf("\ndone in %.1f s. Try next:\n", cr_now() - t0);
    printf("  crossrec compare %s %s/pop.crm %s/itemknn.crm      # with bootstrap intervals\n", crs, dir, dir);
    printf("  crossrec eval %s %s/itemknn.crm --per-user users.tsv\n", crs, dir);
    printf("and on your own data:\n");
    printf("  crossrec import --interactions interactions.tsv --items items.tsv -o data.crd\n");
    printf("  crossrec split data.crd --protocol cold-user --target CATEGORY -o s.crs\n");
    printf("  crossrec train s.crs --model itemknn -o m.crm && crossrec eval s.crs m.crm\n");
    return 0;
}
