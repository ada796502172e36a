#!/bin/sh
# The contention profile written at exit (FASTMUTEX_STATS=FILE): as JSON,
# every acquisition counted per mutex and site, waits and holds timed,
# rows sorted by total wait; as text, the same rows under a header.
# usage: stats_test.sh FIXTURE WORK_DIR
set -eu
fixture=$1
dir=$2
mkdir -p "$dir"
rm -f "$dir/profile.json" "$dir/profile.txt"
FASTMUTEX_STATS="$dir/profile.json" "$fixture"
python3 - "$dir/profile.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
def total(name, key):
    return sum(r[key] for r in rows if r["name"] == name)
def check(what, ok):
    if not ok:
        print(json.dumps(rows, indent=1))
        sys.exit(f"stats_test.sh: {what}")
check("hot: 100 acquisitions", total("hot", "acquisitions") == 100)
check("hot: some waited", total("hot", "contended") >= 1)
check("hot: a hold of 200 us or more", max(r["hold_max_ns"] for r in rows if r["name"] == "hot") >= 200000)
check("hot: waited as long as the longest wait", total("hot", "wait_total_ns") >= max(r["wait_max_ns"] for r in rows))
check("cold: 10 acquisitions, none waited", total("cold", "acquisitions") == 10 and total("cold", "contended") == 0)
check("cold: no wait time", total("cold", "wait_total_ns") == 0)
waits = [r["wait_total_ns"] for r in rows]
check("sorted by total wait", waits == sorted(waits, reverse=True))
print("json profile: hot 100 acquisitions (%d waited), cold 10 (none waited), sorted by wait" % total("hot", "contended"))
PY
FASTMUTEX_STATS="$dir/profile.txt" "$fixture"
head -1 "$dir/profile.txt" | grep -q "^fastmutex contention profile of process [0-9]*, by total wait" ||
    { cat "$dir/profile.txt"; echo "stats_test.sh: text profile lacks its title" >&2; exit 1; }
# The first row is the mutex waited for most.
sed -n 3p "$dir/profile.txt" | grep -q " hot " ||
    { cat "$dir/profile.txt"; echo "stats_test.sh: 'hot' is not the first row" >&2; exit 1; }
echo "text profile: hot first"
# A FAST_MUTEX's rows name it by its own address, the one its user knows,
# not by the fast_mutex_t inside it: in JSON with its kind, in text after
# the word FAST_MUTEX.
wdm=$(FASTMUTEX_STATS="$dir/profile-wdm.json" "$fixture" wdm)
python3 - "$dir/profile-wdm.json" "${wdm#wdm=}" <<'PY'
import json, sys
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if r["name"] == "wdm"]
address = int(sys.argv[2], 16)
if not (sum(r["acquisitions"] for r in rows) == 5 and len(rows) == 3 and
        all(int(r["mutex"], 16) == address and r["kind"] == "FAST_MUTEX" for r in rows)):
    print(json.dumps(rows, indent=1))
    sys.exit("stats_test.sh: the FAST_MUTEX's rows do not name %s: %r" % (sys.argv[2], rows))
PY
wdm=$(FASTMUTEX_STATS="$dir/profile-wdm.txt" "$fixture" wdm)
[ "$(grep -c "  FAST_MUTEX ${wdm#wdm=} wdm " "$dir/profile-wdm.txt")" = 3 ] ||
    { cat "$dir/profile-wdm.txt"; echo "stats_test.sh: text rows do not name FAST_MUTEX ${wdm#wdm=}" >&2; exit 1; }
echo "FAST_MUTEX: 3 rows (acquire, try, unsafe) name its own address ${wdm#wdm=}"
# A file that cannot be written: one line on stderr as the program starts,
# the program unharmed, and no profile written anywhere.
FASTMUTEX_STATS=/nonexistent-dir/profile.txt "$fixture" 2>"$dir/err.txt"
[ "$(cat "$dir/err.txt")" = "fastmutex: ignoring FASTMUTEX_STATS='/nonexistent-dir/profile.txt' (want on, off, or the name of a file this process can write); using on (fmx stat only)" ] ||
    { cat "$dir/err.txt"; echo "stats_test.sh: no clear line for an unwritable file" >&2; exit 1; }
echo "unwritable file: one line on stderr"
