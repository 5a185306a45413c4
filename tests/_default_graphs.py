"""Models of each shape the default schedule is read off (issue #21), written here rather than
taken from models/: tests/unit/test_default_schedule_plan.py checks the plans chosen for them,
tests/test_default_schedule.py that the ELBO never decreases under each default."""

LDA_BY_DATA = """
model topics
dim M, G, V
const K = 4
data grp: cat(G)[M]
data w: cat(V)[M]
for k in range(K) { phi[k] ~ Dirichlet(fill(0.5, V)) }
for g in range(G) { mix[g] ~ Dirichlet(fill(0.3, K)) }
for i in range(M) {
    s[i] ~ Categorical(mix[grp[i]])
    w[i] ~ Categorical(phi[s[i]])
}
"""

LDA_BY_LOOP = """
model topics_by_loop
dim D, L, V
const K = 2
data w: cat(V)[D, L]
for k in range(K) { phi[k] ~ Dirichlet(fill(0.5, V)) }
for d in range(D) {
    mix[d] ~ Dirichlet(fill(0.3, K))
    for l in range(L) {
        s[d, l] ~ Categorical(mix[d])
        w[d, l] ~ Categorical(phi[s[d, l]])
    }
}
"""

GAUSSIAN_MIXTURE = """
model clusters
dim N, D
const K = 3
data y: real[N, D]
weights ~ Dirichlet(ones(K))
for k in range(K) {
    centre[k] ~ MvNormal(zeros(D), precision = 0.1 * eye(D))
    prec[k] ~ Wishart(D + 1, eye(D))
}
for n in range(N) {
    c[n] ~ Categorical(weights)
    y[n] ~ MvNormal(centre[c[n]], precision = prec[c[n]])
}
"""

BINARY_MIXTURE = """
model binary
dim N, D
const K = 2
data b: bool[N, D]
weights ~ Dirichlet(ones(K))
for k in range(K) { for j in range(D) { p[k, j] ~ Beta(1, 1) } }
for n in range(N) {
    c[n] ~ Categorical(weights)
    for j in range(D) { b[n, j] ~ Bernoulli(p[c[n], j]) }
}
"""

GAUSSIAN_CHAIN = """
model regimes
dim T
const K = 2
data y: real[T]
first ~ Dirichlet(ones(K))
for k in range(K) {
    trans[k] ~ Dirichlet(ones(K))
    level[k] ~ Normal(0, precision = 0.01)
    noise[k] ~ Gamma(1, 1)
}
s[0] ~ Categorical(first)
for t in range(1, T) { s[t] ~ Categorical(trans[s[t-1]]) }
for t in range(T) { y[t] ~ Normal(level[s[t]], precision = noise[s[t]]) }
"""

CATEGORICAL_CHAIN = """
model symbols
dim T, V
const K = 3
data y: cat(V)[T]
first ~ Dirichlet(ones(K))
for k in range(K) {
    trans[k] ~ Dirichlet(ones(K))
    emit[k] ~ Dirichlet(ones(V))
}
s[0] ~ Categorical(first)
for t in range(1, T) { s[t] ~ Categorical(trans[s[t-1]]) }
for t in range(T) { y[t] ~ Categorical(emit[s[t]]) }
"""

HIERARCHY = """
model groups
dim J
data y: real[J]
centre ~ Normal(0, precision = 1e-3)
spread ~ Gamma(1, 1)
for j in range(J) {
    effect[j] ~ Normal(centre, precision = spread)
    y[j] ~ Normal(effect[j], precision = 4.0)
}
"""

BILINEAR = """
model factors
dim N, D
const L = 2
data x: real[N, D]
noise ~ Gamma(1, 1)
for j in range(D) { for l in range(L) { W[j, l] ~ Normal(0, precision = 1.0) } }
for n in range(N) {
    h[n] ~ MvNormal(zeros(L), eye(L))
    for j in range(D) { x[n, j] ~ Normal(dot(W[j], h[n]), precision = noise) }
}
"""
