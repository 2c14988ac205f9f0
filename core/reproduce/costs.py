"""Time estimates of stages (`rgflow reproduce --plan`).

Static per-unit costs measured on the development machine (2 cores shared with other work,
numba caches warm). Expect +-50%; the report records the actual seconds."""


COST_MC_PER_T = 0.3              # s per temperature: pilot run, thermalisation, bookkeeping


COST_MC_PER_SITE_SAMPLE = 1.6e-8  # s per site per stored sample (spacing ~ a few sweeps)


# RBM costs fitted to the quick preset's two training sizes (1024 -> 256 and 100 -> 81).
COST_RBM_STEP = 1.7e-4           # s per update, fixed part


COST_RBM_MAC = 8.3e-11           # s per (row x n_visible x n_hidden), rows = batch + chains


COST_MONITOR = 0.02              # s per monitoring evaluation, fixed part


COST_MONITOR_MAC = 2.6e-9        # s per (monitored configuration x n_visible x n_hidden)


COST_MLP_MAC = 4e-10             # s per (configuration x input x hidden unit) per epoch


COST_VH_MAC = 5e-10              # s per (configuration x visible x hidden) of <v h>


COST_MEASURE = 0.01              # s per flow-step measurement, fixed part


COST_MEASURE_CONFIG = 3.5e-5     # s per configuration per flow-step measurement


def est_mc(L, n_t, n, threads):
    return n_t * (COST_MC_PER_T + COST_MC_PER_SITE_SAMPLE * L * L * n) / max(1, min(threads,
                                                                                  n_t))


def est_rbm(p, n_v, n_h, steps):
    rows = p.rbm_batch + p.rbm_chains
    monitor = (p.rbm_monitor_points + 2) * (COST_MONITOR + COST_MONITOR_MAC * 256 * n_v * n_h)
    return steps * (COST_RBM_STEP + COST_RBM_MAC * rows * n_v * n_h) + monitor
