#!/usr/bin/env bash
# kill_writes.sh — crash-safe writes campaign (issue 9): starts `crossrec import DIR -o data.crd` and
# `crossrec train split.crs --model bpr -o m.crm` over an output that already exists, kills it with SIGKILL at a
# random moment, and checks that the file under the final name is byte-identical either to the old file or to
# the complete new one (both known: two inputs, A and B, whose outputs are made once as references; each trial
# writes the one the file does not hold). Never anything else: a truncated or mixed file is a failure.
# Half the trials kill at a uniform time over the whole run, half while the output is being written (once its
# temporary NAME.tmp.* appears). Writers remove the temporaries that killed writers left (io.h); after the
# trials one run to completion must leave none.
#
#   CROSSREC=build/rel/crossrec bash tests/faults/kill_writes.sh short|long     (make test-faults [FAULTS=short])
#
# short: 20 trials per command; long: 300. Prints one summary line per command; exit 1 on a failed check.
set -u
mode=${1:-long}
case $mode in short) trials=20 ;; long) trials=300 ;; *) echo "usage: kill_writes.sh short|long" >&2; exit 2 ;; esac
bin=$(realpath "${CROSSREC:-build/current/crossrec}")
work=$(mktemp -d "${TMPDIR:-/tmp}/crossrec-kill-XXXXXX")
failed=0
fail() { echo "kill_writes: $*" >&2; failed=1; }

# Inputs big enough that writing the output takes measurable time (tens of MB).
for v in A B; do
  seed=$([ $v = A ] && echo 1 || echo 2)
  "$bin" synth -o "$work/in$v" --users 100000 --items 20000 --interactions 1000000 --seed $seed >/dev/null || exit 2
done
"$bin" import "$work/inA" -o "$work/base.crd" -q && "$bin" split "$work/base.crd" --protocol cold-user --target music \
  -o "$work/base.crs" -q || exit 2

# The command of each (op, variant), writing $2.
command_for() {   # op variant out
  case $1 in
    import) echo "$bin import $work/in$2 -o $3 -q" ;;
    train)  echo "$bin train $work/base.crs --model bpr --dim 32 --epochs 1 --threads 1 --seed $([ $2 = A ] && echo 1 || echo 2) -o $3 -q" ;;
  esac
}

# Sleeps s seconds (fractional) without forking a process per poll: a read that times out on a pipe nobody writes.
exec {nap_fd}<> <(:)
nap() { read -r -t "$1" -u $nap_fd || :; }

# Whether a temporary of $1 exists that is not in the list $2 (those before the run started).
new_temp() {
  local f
  for f in $(compgen -G "$1.tmp.*"); do [[ $2 == *" $f "* ]] || return 0; done
  return 1
}

campaign() {   # op out_name
  local op=$1 out=$work/$2 t0 t1 base_ms
  for v in A B; do $(command_for $op $v "$work/ref$v-$2") || { fail "$op $v: reference run failed"; return; }; done
  cmp -s "$work/refA-$2" "$work/refB-$2" && { fail "$op: the two references are identical"; return; }
  cp "$work/refA-$2" "$out"
  t0=$(date +%s%N); $(command_for $op B "$work/timing-$2"); t1=$(date +%s%N)
  base_ms=$(( (t1 - t0) / 1000000 )); rm -f "$work/timing-$2"
  local n_old=0 n_new=0 n_bad=0 n_write=0 n_done=0 max_tmp=0 n_tmp
  for ((k = 0; k < trials; k++)); do
    local cur next
    if cmp -s "$out" "$work/refA-$2"; then cur=A next=B; else cur=B next=A; fi
    local before=" $(compgen -G "$out.tmp.*" | tr '\n' ' ')"
    $(command_for $op $next "$out") 2>>"$work/log-$2" & local pid=$!
    if ((k % 2)); then     # while writing: once its own temporary exists, within a few milliseconds
      while kill -0 $pid 2>/dev/null && ! new_temp "$out" "$before"; do nap 0.001; done
      new_temp "$out" "$before" && n_write=$((n_write + 1))
      nap "0.00$((RANDOM % 10))"
    else                   # anywhere in the run, up to 10% past its usual end
      local ms=$((RANDOM * base_ms * 11 / 10 / 32768))
      nap "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    fi
    kill -KILL $pid 2>/dev/null || n_done=$((n_done + 1))
    wait $pid 2>/dev/null
    if cmp -s "$out" "$work/ref$cur-$2"; then n_old=$((n_old + 1))
    elif cmp -s "$out" "$work/ref$next-$2"; then n_new=$((n_new + 1))
    else
      n_bad=$((n_bad + 1))
      fail "$op trial $k: $2 is neither the old nor the new file ($(stat -c %s "$out") bytes): $("$bin" inspect "$out" 2>&1 | head -1)"
      cp "$work/ref$cur-$2" "$out"
    fi
    n_tmp=$(compgen -G "$out.tmp.*" | wc -l)
    ((n_tmp > max_tmp)) && max_tmp=$n_tmp
  done
  # One run to completion: it writes the new file and removes what the killed runs left.
  if cmp -s "$out" "$work/refA-$2"; then v=B; else v=A; fi
  $(command_for $op $v "$out") 2>>"$work/log-$2" || fail "$op: the run after the trials failed"
  cmp -s "$out" "$work/ref$v-$2" || fail "$op: the run after the trials wrote a different file"
  n_tmp=$(compgen -G "$out.tmp.*" | wc -l)
  ((n_tmp == 0)) || fail "$op: $n_tmp temporary files left after a complete run: $(compgen -G "$out.tmp.*" | head -3 | tr '\n' ' ')"
  echo "kill_writes: $op ($(stat -c %s "$out") bytes, run ${base_ms} ms): $trials trials, $((trials - n_done)) killed" \
       "($n_write in the write), $n_old left the old file, $n_new the new one, $n_bad damaged;" \
       "temporaries: at most $max_tmp at once, $(grep -c "which no longer runs" "$work/log-$2") removed by later writers," \
       "$n_tmp after a complete run"
}

campaign import data.crd
campaign train m.crm
((failed)) && { echo "kill_writes: files kept in $work" >&2; exit 1; }
rm -rf "$work"
