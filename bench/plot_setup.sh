# Sourced by bench/plot.sh and bench/heatmap.sh, which both draw from one
# file of a fmx-bench --out DIR folder with gnuplot.
#   plot_setup SCRIPT FILE "$@"
# checks that the script was given one DIR, that DIR/FILE can be read and
# that gnuplot is installed (else one line on stderr and exit 2, or 1 for a
# missing gnuplot), and sets dir and csv.
plot_setup() {
    script=$1
    file=$2
    shift 2
    if [ $# -ne 1 ]; then
        echo "usage: bench/$script DIR  (DIR holds $file from fmx-bench --out DIR)" >&2
        exit 2
    fi
    dir=$1
    csv=$dir/$file
    if [ ! -r "$csv" ]; then
        echo "$script: cannot read $csv (run fmx-bench --out $dir first)" >&2
        exit 2
    fi
    if ! command -v gnuplot >/dev/null 2>&1; then
        echo "$script: gnuplot is not installed (Debian package gnuplot-nox)" >&2
        exit 1
    fi
}
