#!/usr/bin/env bash
# End-to-end tests of the pictures: `nabla graph` (forward and gradient graphs in DOT, rendered
# by Graphviz when it is installed), `nabla plot-regions` (every pixel's colour is the class
# `nabla predict` gives that pixel's centre), `nabla train --plot` and `nabla plot-csv`
# (PNGs of the right size with something drawn), and the examples that draw through the tool.
# Without cairo, the clear "plotting is unavailable" error is checked instead.
#
# Run from the repository root: bash tests/cli_pictures.sh. $NABLA is the CLI (default
# $NABLA_BUILD/nabla, NABLA_BUILD defaulting to build); PNGs are read back with
# $NABLA_BUILD/tests/tool_png_probe. Exits non-zero on the first failure.
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"
BUILD=${NABLA_BUILD:-$(dirname "$NABLA")}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
PROBE=$BUILD/tests/tool_png_probe

# every training epoch fsyncs a checkpoint: a RAM disk keeps that cheap
cli_enter_scratch pictures

# Fails unless `nabla ARGS...` exits with status $1 and its stderr matches $2 (grep -E).
refuse() {
    local want=$1 pattern=$2 rc=0
    shift 2
    "$NABLA" "$@" >out.txt 2>err.txt || rc=$?
    if [ "$rc" -ne "$want" ] || ! grep -qE -- "$pattern" err.txt || grep -qE 'Sanitizer|runtime error:' err.txt; then
        fail "nabla $* to exit $want with /$pattern/" "exit $rc: $(cat err.txt)"
    fi
}

have_dot=0
command -v dot >/dev/null 2>&1 && have_dot=1

# ---- nabla graph: the forward graph ----------------------------------------------------------
RES=$ROOT/examples/residual.nb
run graph "$RES"
cp out.txt forward.dot
grep -q '^digraph ' forward.dot || fail "graph to write a digraph" "$(head -n 5 forward.dot)"
# every node of the description, the parameters Linear creates and the cost training appends
for node in x h1 a1 h2 res both drop out h1.weight h1.bias h2.weight h2.bias out.weight \
    out.bias y: cost:; do
    grep -q "^  \"$node\" \[" forward.dot || fail "forward graph: a node \"$node\"" "$(cat forward.dot)"
done
# edges carry shapes: batched values [N,…], parameters their full shape, the cost [1]
for edge in '"x" -> "h1" \[label="\[N,64\]"\]' '"x" -> "res" \[label="\[N,64\]"\]' \
    '"a1" -> "both" \[label="\[N,64\]"\]' '"out.weight" -> "out" \[label="\[10,64\]"\]' \
    '"out" -> "cost:" \[label="\[N,10\]"\]' '"y:" -> "cost:" \[label="\[N\]"\]'; do
    grep -qE "$edge" forward.dot || fail "forward graph: an edge /$edge/" "$(cat forward.dot)"
done
grep -q 'shape=ellipse, style=filled' forward.dot && grep -q 'observed input' forward.dot ||
    fail "inputs drawn as shaded ellipses" "$(cat forward.dot)"
grep -q '"h1.weight" \[shape=box' forward.dot || fail "parameters drawn as boxes" "$(cat forward.dot)"
grep -q '<b>C</b> (cost)' forward.dot || fail "the loss drawn as the cost" "$(cat forward.dot)"
run graph 784-256-10
grep -q '"x" -> "fc1" \[label="\[N,784\]"\]' out.txt || fail "shorthand: an edge x -> fc1 with [N,784]" "$(cat out.txt)"
ok "graph: every node, the shapes on the edges, inputs/parameters/modules/cost styled"

# ---- nabla graph --backward: the gradient graph ----------------------------------------------
run graph "$RES" --backward
cp out.txt backward.dot
# a1 feeds h2 and both: its gradient is the sum of the two, in an explicit Σ node
grep -q '"sum:a1" \[shape=circle.*label="Σ"' backward.dot || fail "a Σ node for a1 (fan-out)" "$(cat backward.dot)"
grep -q '"vjp:h2" -> "sum:a1"' backward.dot && grep -q '"vjp:both" -> "sum:a1"' backward.dot &&
    grep -q '"sum:a1" -> "vjp:a1" \[label="dC/da1 \[N,64\]"' backward.dot ||
    fail "both contributions into Σ, and dC/da1 out of it" "$(cat backward.dot)"
# x fans out too (h1 and res), but training computes no gradient for an observed input
grep -q '"sum:x" .*dashed' backward.dot || fail "x's Σ drawn dashed (not computed)" "$(cat backward.dot)"
for vjp in cost: out drop both res h2 a1 h1; do
    grep -q "^  \"vjp:$vjp\" \[" backward.dot || fail "a VJP node for $vjp" "$(cat backward.dot)"
done
grep -q 'dX += dY·W' backward.dot && grep -q 'dW += dYᵀ·X' backward.dot ||
    fail "Linear's VJP formulas" "$(cat backward.dot)"
grep -q '"vjp:h1" -> "grad:h1.weight" \[label="dC/dh1.weight \[64,64\]"\]' backward.dot ||
    fail "an edge carrying dC/dh1.weight [64,64] to the parameter" "$(cat backward.dot)"
grep -q '"seed:" -> "vjp:cost:"' backward.dot || fail "backprop seeded at the cost" "$(cat backward.dot)"
run graph 2-64-3 --backward
grep -q 'label="Σ"' out.txt && fail "no Σ node in a chain without fan-out" "$(cat out.txt)"
ok "graph --backward: a VJP per module, gradients with shapes, Σ where a1 and x fan out"

# ---- nabla graph: what a person reads -----------------------------------------------------------
# no internal names: the cost training appends is C, its labels or targets y
grep -q 'label=<<b>C</b> (cost) · cross_entropy' forward.dot && grep -q 'label=<<b>y</b><br/>' forward.dot &&
    grep -q 'label="dC/dC = 1"' backward.dot || fail "the added cost drawn as C, its labels as y" "$(cat forward.dot)"
run graph "$ROOT/examples/linear.nb"
cp out.txt linear.dot
run graph "$ROOT/examples/linear.nb" --backward
cat out.txt >>linear.dot
run graph 784-256-10:tanh --backward
cat out.txt >>linear.dot
for f in forward.dot backward.dot linear.dot; do
    ! grep -n '__' "$f" || fail "$f: no internal name (__loss__, __labels__, __targets__) anywhere"
done
# subscripts are subscripts: a formula's Σ_c is drawn Σ<sub>c</sub>, names keep their underscores
printf 'x = input(1, 8, 8)\nconv_a = conv2d(x, 4, 3)\nr = relu(conv_a)\np = global_avg_pool(r)\nf = flatten(p)\nout_z = linear(f, 3)\n' >cnn.nb
run graph cnn.nb
grep -q 'Σ<sub>c</sub> W\[k,c\]' out.txt && grep -q 'Σ<sub>h,w</sub> X' out.txt &&
    grep -q '<b>conv_a</b>' out.txt && grep -q '<b>out_z</b>' out.txt ||
    fail "formula subscripts as <sub>, node names with their underscores" "$(grep -E 'conv_a|global' out.txt)"
# inside a label's formula line (after <br/>) no underscore is left: it would read as a name
labels_with_underscore=$(grep -o '<br/><font[^>]*>[^<]*' out.txt | grep -c '_' || true)
[ "$labels_with_underscore" -eq 0 ] || fail "no '_' left in a formula line" "$(grep -o '<br/><font[^>]*>[^<]*' out.txt | grep '_')"
# a model file's input normalisation: the first module, between x and the first layer
"$NABLA" train 2-8-3 --data spirals:20 --epochs 1 -q -o norm.safetensors >/dev/null 2>&1 || fail "a model to draw"
run graph norm.safetensors
grep -q '^  "normalise:" \[.*per feature' out.txt && grep -q '^  "x" -> "normalise:" \[label="\[N,2\]"\]' out.txt &&
    grep -q '^  "normalise:" -> "fc1"' out.txt && ! grep -q '"x" -> "fc1"' out.txt ||
    fail "norm.safetensors: x -> normalise -> fc1" "$(cat out.txt)"
"$NABLA" train 2-8-3 --data spirals:20 --epochs 1 --normalize none -q -o raw.safetensors >/dev/null 2>&1 || fail "a model without normalisation"
run graph raw.safetensors
grep -q 'normalise' out.txt && fail "no normalise node without a stored normalisation" "$(cat out.txt)"
grep -q '"x" -> "fc1"' out.txt || fail "raw.safetensors: x -> fc1"
ok "graph: C and y instead of internal names, subscripts as subscripts, the stored normalisation first"

# ---- rendering with Graphviz -----------------------------------------------------------------
if [ "$have_dot" = 1 ]; then
    for f in forward backward; do
        dot -Tsvg "$f.dot" >"$f.svg" 2>dot.err || fail "dot -Tsvg to parse the $f graph" "$(cat dot.err)"
        [ -s "$f.svg" ] || fail "a non-empty $f.svg"
    done
    run graph "$RES" --backward --png backward.png -o copy.dot
    [ "$(head -c 8 backward.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
        fail "--png to write a PNG file"
    cmp -s copy.dot backward.dot || fail "-o to write the same DOT as standard output"
    [ -s out.txt ] && fail "no DOT on standard output with --png" "$(head -n 3 out.txt)"
    run graph "$ROOT/examples/mynet.nb" --svg mynet.svg
    grep -q '<svg' mynet.svg || fail "--svg to write SVG" "$(head -c 300 mynet.svg)"
    ok "graph: dot -Tsvg parses both graphs; --png and --svg render through Graphviz"
else
    skip "Graphviz (dot) is not installed: the DOT text is not parsed (apt-get install graphviz)"
fi
# without dot on PATH: a clear error, and the DOT still written with -o
mkdir -p nodot
rc=0
PATH=$tmp/nodot "$NABLA" graph "$RES" --png x.png -o kept.dot >out.txt 2>err.txt || rc=$?
[ "$rc" -eq 1 ] && grep -q 'Graphviz is not installed' err.txt && grep -q -- '-o FILE.dot' err.txt ||
    fail "without dot: exit 1 saying Graphviz is not installed" "exit $rc: $(cat err.txt)"
cmp -s kept.dot forward.dot || fail "without dot: -o still writes the DOT"
ok "graph without Graphviz: a clear error, the DOT still written with -o"
# a dot that fails half-way (exit status 3, or killed by a signal) after writing part of the
# picture: exit 1 naming the file and dot's status, the previous picture kept, no temporary file
mkdir -p baddot killdot
printf '%s\n' '#!/bin/sh' 'cat >/dev/null' 'printf "\211PNG\r\n\032\npartial"' \
    'echo "Error: <stdin>: syntax error in line 1" >&2' 'exit 3' > baddot/dot
printf '%s\n' '#!/bin/sh' 'head -c 10 >/dev/null' 'printf "\211PNG\r\n\032\npartial"' \
    'kill -SEGV $$' > killdot/dot
chmod +x baddot/dot killdot/dot
printf 'the previous picture\n' > prev.png
cp prev.png prev.before
for d in baddot:'exit status 3' killdot:'signal 11'; do
    rc=0
    PATH=$tmp/${d%%:*}:$PATH "$NABLA" graph "$RES" --png prev.png >out.txt 2>err.txt || rc=$?
    [ "$rc" -eq 1 ] && grep -qF "prev.png: dot -Tpng failed (${d#*:}" err.txt &&
        grep -q 'previous file, if any, is unchanged' err.txt ||
        fail "graph --png, ${d%%:*}: exit 1 naming the file and dot's ${d#*:}" "exit $rc: $(cat err.txt)"
    cmp -s prev.png prev.before || fail "graph --png, ${d%%:*}: the previous picture kept" "$(od -c prev.png | head -3)"
    ! ls | grep -q 'prev\.png\.tmp\.' || fail "graph --png, ${d%%:*}: no temporary file left" "$(ls)"
done
ok "graph --png: a dot that fails or dies half-way leaves the previous picture and says so"

# ---- cairo or not ----------------------------------------------------------------------------
printf 'x,y\n0,1\n1,3\n2,2\n' >tiny.csv
rc=0
"$NABLA" plot-csv tiny.csv --x x --y y -o tiny.png >out.txt 2>err.txt || rc=$?
if [ "$rc" -ne 0 ] && grep -q 'built without cairo' err.txt; then
    msg='nabla was built without cairo: plotting is unavailable \(install libcairo2-dev and rebuild\)'
    grep -qE "$msg" err.txt || fail "plot-csv: the full 'plotting is unavailable' message" "$(cat err.txt)"
    "$NABLA" train 2-8-3 --data spirals:20 --epochs 1 -q -o m.safetensors >/dev/null 2>&1 ||
        fail "a model to try plot-regions with"
    refuse 1 "$msg" plot-regions m.safetensors --data spirals:20 -o r.png
    refuse 1 "$msg" train 2-8-3 --data spirals:20 --epochs 1 -q -o m2.safetensors --plot c.png
    [ -e m2.safetensors ] && fail "train --plot without cairo to refuse before training"
    ok "built without cairo: plot-csv, plot-regions and train --plot say plotting is unavailable"
    skip "the pictures: nabla was built without cairo (apt-get install libcairo2-dev, rebuild)"
    cli_finish cli_pictures
fi
[ "$rc" -eq 0 ] || fail "plot-csv on a tiny CSV" "exit $rc: $(cat err.txt)"
[ -x "$PROBE" ] || fail "$PROBE to exist (make builds it)"

# probe FILE [X Y]...: pixels as "R G B" lines after the "W H" line
probe() { "$PROBE" "$@" 2>probe.err || fail "tool_png_probe $*" "$(cat probe.err)"; }

# ---- train --plot: the training curves -------------------------------------------------------
# 2-64-3 on the three spirals, past 90 % (docs/lecture.md §6)
run train 2-64-3 --data spirals --optimizer adam --lr 0.01 --batch 32 --epochs 60 \
    --val-split 0.2 --seed 3 --json -q -o spirals.safetensors --plot curves.png
acc=$(grep -o '"train_accuracy": *[0-9.]*' out.txt | grep -o '[0-9.]*$')
awk -v a="$acc" 'BEGIN { exit !(a > 0.9) }' || fail "2-64-3 to exceed 90 % on spirals" "$(cat out.txt)"
read -r w h colours nonwhite < <(probe --stats curves.png)
[ "$w" = 1100 ] && [ "$h" = 440 ] || fail "curves.png to be 1100×440" "$w×$h"
awk -v c="$colours" -v n="$nonwhite" 'BEGIN { exit !(c >= 50 && n > 0.02 && n < 0.6) }' ||
    fail "curves.png to have axes, text and lines (colours $colours, non-white $nonwhite)"
ok "train --plot: a 1100×440 PNG with content ($colours colours, $(awk -v n="$nonwhite" 'BEGIN { printf "%.1f", 100 * n }') % non-white); 2-64-3 at $acc"

# ---- plot-regions: every pixel's colour is the class predicted at its centre -------------------
run plot-regions spirals.safetensors --data spirals --size 300 --no-points -o regions.png \
    --pixels map.csv
[ "$(head -n 1 map.csv)" = "x0,x1,label,px,py,cx0,cx1" ] || fail "the pixel map's header" "$(head -n 2 map.csv)"
points=$(($(wc -l <map.csv) - 1))
[ "$points" -eq 300 ] || fail "all 300 points inside the plane" "$points"
# the colours at the points' pixels
args=$(awk -F, 'NR > 1 { printf "%s %s ", $4, $5 }' map.csv)
# shellcheck disable=SC2086
probe regions.png $args | tail -n +2 >colours.txt
# what nabla predict says at those pixels' centres, and at the points themselves
awk -F, 'BEGIN { print "a,b,label" } NR > 1 { print $6 "," $7 "," $3 }' map.csv >centres.csv
awk -F, 'BEGIN { print "a,b,label" } NR > 1 { print $1 "," $2 "," $3 }' map.csv >points.csv
run predict spirals.safetensors --data csv:centres.csv:label
tail -n +2 out.txt >centres.pred
run predict spirals.safetensors --data csv:points.csv:label
tail -n +2 out.txt >points.pred
# region colours: the palette of cli/plot.c mixed 55 % with white (plot_class_region)
region() { printf '%d %d %d' $(( $1 + (255 - $1) * 11 / 20 )) $(( $2 + (255 - $2) * 11 / 20 )) $(( $3 + (255 - $3) * 11 / 20 )); }
palette=("$(region 0x4E 0x79 0xA7)" "$(region 0xF2 0x8E 0x2B)" "$(region 0xE1 0x57 0x59)")
printf '%s\n' "${palette[@]}" >palette.txt
tail -n +2 map.csv >map.body
paste -d'|' colours.txt centres.pred points.pred map.body | awk -F'|' '
    FNR == NR { colour[$0] = NR - 1; next }      # palette.txt: "R G B" -> class
    {
        split($2, c, ","); split($3, p, ","); split($4, m, ",")
        k = ($1 in colour) ? colour[$1] : -1
        if (k < 0) { bad++; if (!shown++) print "pixel " m[4] "," m[5] ": colour " $1 " is no class colour"; next }
        # the class at the pixel centre: skip near-ties (|p_top - p_second| < 1e-3), where two
        # batchings of the same input may round differently
        split("", q); for (j = 4; j <= 6; j++) q[j - 4] = c[j]
        top = -1; second = -1
        for (j = 0; j < 3; j++) if (q[j] > top) { second = top; top = q[j] } else if (q[j] > second) second = q[j]
        if (top - second >= 1e-3) { compared++; if (k != c[2]) { bad++; if (!shown++) print "pixel " m[4] "," m[5] " (" m[6] "," m[7] "): colour of class " k ", predicted " c[2] } }
        agree_point += (k == p[2]); agree_label += (k == m[3]); n++
    }
    END {
        printf "%d %d %d %d %d\n", compared, bad, agree_point, agree_label, n
    }' palette.txt - >check.txt
read -r compared bad agree_point agree_label n < <(tail -n 1 check.txt)
[ "$bad" -eq 0 ] || fail "every probed pixel coloured by the class predicted at its centre" "$(cat check.txt)"
[ "$compared" -ge 290 ] || fail "at least 290 of 300 pixels compared (not near a tie)" "$(cat check.txt)"
# sub-pixel offsets: the point itself may sit across a boundary from its pixel's centre
[ $((agree_point * 100)) -ge $((97 * n)) ] || fail "the class at ≥ 97 % of the points themselves to match their pixel" "$(cat check.txt)"
[ $((agree_label * 100)) -ge $((90 * n)) ] || fail "≥ 90 % of the points in the region of their own class" "$(cat check.txt)"
read -r rw rh < <(probe regions.png | head -n 1)
[ "$rw" -gt 300 ] && [ "$rh" -gt 300 ] || fail "regions.png larger than its 300×300 plane (axes, legend)" "$rw×$rh"
ok "plot-regions: $compared pixels coloured exactly as nabla predict classifies their centres; $agree_label/$n points in their class's region"

# with points: the pixel under a point's centre shows the point, a darker shade of its class
# (40 points per arm: 300 would overlap at this size and cover each other's centres)
run plot-regions spirals.safetensors --data spirals:40 --size 300 -o points.png --pixels map2.csv
tail -n +2 map2.csv >map2.body
args2=$(awk -F, 'NR > 1 { printf "%s %s ", $4, $5 }' map2.csv)
point() { printf '%d %d %d' $(( $1 * 3 / 4 )) $(( $2 * 3 / 4 )) $(( $3 * 3 / 4 )); }
dark=("$(point 0x4E 0x79 0xA7)" "$(point 0xF2 0x8E 0x2B)" "$(point 0xE1 0x57 0x59)")
# shellcheck disable=SC2086
probe points.png $args2 | tail -n +2 >dots.txt
# (cairo fills the markers, and its colour conversion may round a channel by one: ±2)
own=$(paste -d'|' dots.txt map2.body | awk -F'|' -v d0="${dark[0]}" -v d1="${dark[1]}" -v d2="${dark[2]}" '
    function near(a, b,   x, y, i) {
        split(a, x, " "); split(b, y, " ")
        for (i = 1; i <= 3; i++) if (x[i] - y[i] > 2 || y[i] - x[i] > 2) return 0
        return 1
    }
    { split($2, m, ","); want = m[3] == 0 ? d0 : m[3] == 1 ? d1 : d2; own += near($1, want) }
    END { print own + 0 }')
# points overlap near the origin, where all three arms start, and where the noise brings two
# within a marker's width: a later point's outline may cover an earlier one's centre
[ "$own" -ge 100 ] || fail "≥ 100 of 120 point centres drawn in their class's dark shade" "$own"
ok "plot-regions: $own/120 point centres drawn in the darker shade of their class"

# ---- refusals ----------------------------------------------------------------------------------
refuse 2 'expected a trained model file' plot-regions 2-64-3 --data spirals -o r.png
refuse 2 'expected --data' plot-regions spirals.safetensors -o r.png
refuse 2 '--size: expected an integer' plot-regions spirals.safetensors --data spirals --size 5 -o r.png
printf 'a,b,c,d,y\n0,1,2,3,0\n1,2,3,4,1\n2,3,4,5,2\n' >four.csv
run train 4-8-3 --data csv:four.csv:y --epochs 1 -q -o four.safetensors
refuse 1 '2 input features' plot-regions four.safetensors --extent -1,1,-1,1 -o r.png
refuse 1 "no column 'nope'" plot-csv tiny.csv --x x --y nope -o t.png
refuse 2 'expected --x' plot-csv tiny.csv -o t.png
ok "plot-regions and plot-csv refuse what they cannot draw, naming why"

# ---- plot-csv: the training log, in two panels ---------------------------------------------------
run train 2-64-3 --data spirals --optimizer adam --lr 0.01 --epochs 5 --val-split 0.2 -q \
    -o log.safetensors --log log.csv
run plot-csv log.csv --x epoch --y train_loss,val_loss --y train_accuracy,val_accuracy \
    --log-y=1 --size 800x360 --title "spirals" -o log.png
read -r w h colours nonwhite < <(probe --stats log.png)
[ "$w" = 800 ] && [ "$h" = 360 ] && [ "$colours" -ge 50 ] ||
    fail "log.png: 800×360 with content" "$w×$h, $colours colours"
ok "plot-csv: the training log in two panels, 800×360"

# ---- plot-csv: defaults, gaps, groups -----------------------------------------------------------
# legend_boxes FILE.png: the legend boxes, "X0 Y0 X1 Y1 TINTED" each
legend_boxes() { probe --legends "$1"; }
count_colour() { probe --count "$@"; }
# a training log without validation: val_loss and val_accuracy are all nan
run train 2-32-3 --data spirals --optimizer adam --lr 0.01 --epochs 6 -q -o nv.safetensors --log nv.csv
grep -q ',nan,nan,' nv.csv || fail "a log without validation to have nan val columns" "$(head -n 3 nv.csv)"
run plot-csv nv.csv --x epoch --y train_loss,val_loss --y train_accuracy,val_accuracy -o nv.png
read -r blue orange < <(count_colour nv.png 4E79A7 F28E2B | paste -sd' ')
[ "$blue" -gt 100 ] && [ "$orange" -eq 0 ] ||
    fail "all-nan val_loss/val_accuracy: no line and no legend entry (orange pixels 0)" "blue $blue, orange $orange"
[ "$(legend_boxes nv.png | wc -l)" -eq 2 ] || fail "nv.png: a legend per panel" "$(legend_boxes nv.png)"
# a title by default: the top 34 rows hold it, the panels' frames start below (without a
# title the first frame runs along row 14)
run plot-csv nv.csv --x epoch --y train_loss,val_loss --y train_accuracy,val_accuracy -o bare.png --title ''
title_px=$(probe --nonwhite nv.png 0 0 1120 34)
[ "$title_px" -gt 100 ] && [ "$(probe nv.png 100 14 | tail -n 1)" = "255 255 255" ] &&
    [ "$(probe bare.png 100 14 | tail -n 1)" = "51 51 51" ] ||
    fail "a title above the panels by default, none with --title ''" "$title_px title pixels"
# y-axis labels by default: the same picture with --ylabel '' (same layout) differs only there
run plot-csv nv.csv --x epoch --y train_loss,val_loss --y train_accuracy,val_accuracy -o nolabel.png \
    --ylabel '' --ylabel ''
label_px=$(probe --diff nv.png nolabel.png)
[ "$label_px" -gt 50 ] || fail "y-axis labels by default ('loss', 'accuracy')" "$label_px pixels differ"
ok "plot-csv: all-nan columns leave no legend entry; title and y labels by default"

# long format: one line per group, in the order of first appearance, names as text
{
    echo "method,step,loss"
    for m in gd sgd adam "rms prop"; do
        for i in 0 1 2 3 4 5 6 7 8 9; do echo "$m,$i,$(awk -v i="$i" -v m="${#m}" 'BEGIN { print 1 / (1 + i * m) }')"; done
    done
} >long.csv
run plot-csv long.csv --x step --y loss --group method --log-y -o long.png
read -r c0 c1 c2 c3 c4 < <(count_colour long.png 4E79A7 F28E2B E15759 76B7B2 59A14F | paste -sd' ')
[ "$c0" -gt 50 ] && [ "$c1" -gt 50 ] && [ "$c2" -gt 50 ] && [ "$c3" -gt 50 ] && [ "$c4" -eq 0 ] ||
    fail "--group method: 4 lines in the first 4 colours, none in the 5th" "$c0 $c1 $c2 $c3 $c4"
# the same rows interleaved draw the same picture (rows of a group need not be contiguous)
{ head -n 1 long.csv; tail -n +2 long.csv | awk -F, '{ print $2 "\t" NR "\t" $0 }' | sort -n -k1,1 -s | cut -f3; } >mixed.csv
run plot-csv mixed.csv --x step --y loss --group method --log-y -o mixed.png --title "(long.csv)"
run plot-csv long.csv --x step --y loss --group method --log-y -o long2.png --title "(long.csv)"
[ "$(probe --diff mixed.png long2.png)" -eq 0 ] || fail "--group: interleaved rows draw the same lines"
refuse 1 "no column 'nope'" plot-csv long.csv --x step --y loss --group nope -o g.png
awk 'BEGIN { print "g,x,y"; for (i = 0; i < 70; i++) print "k" i ",0," i }' >many.csv
refuse 1 'more than 64 groups' plot-csv many.csv --x x --y y --group g -o g.png
ok "plot-csv --group: 4 groups drawn as 4 lines ($c0/$c1/$c2/$c3 pixels), row order irrelevant, errors named"

# whole-number x (epochs): ticks at whole numbers only — over 1…4, four vertical grid lines,
# where half-epochs would give seven
grid_columns() {  # FILE Y: the pixels of row Y in the grid's grey
    local w
    read -r w _ < <(probe "$1" | head -n 1)
    # shellcheck disable=SC2046
    probe "$1" $(seq 0 $((w - 1)) | awk -v y="$2" '{ printf "%s %s ", $1, y }') | tail -n +2 | grep -c '^230 230 230$' || true
}
printf 'epoch,a\n1,3\n2,1\n3,2\n4,0\n' >whole.csv
printf 'epoch,a\n1,3\n1.5,2\n2,1\n3,2\n4,0\n' >half.csv
run plot-csv whole.csv --x epoch --y a --size 600x300 --title '' -o whole.png
run plot-csv half.csv --x epoch --y a --size 600x300 --title '' -o half.png
gw=$(grid_columns whole.png 200) gh=$(grid_columns half.png 200)
[ "$gw" -eq 4 ] && [ "$gh" -gt 4 ] || fail "x ticks at whole epochs only (4 grid lines; with a half epoch more)" "$gw vs $gh"
ok "plot-csv: whole-number x gets whole-number ticks ($gw grid lines, $gh with a half step)"

# ---- legends never cover a line ----------------------------------------------------------------
# every legend box: no curve pixel showing through it (its own line samples excepted)
for f in nv.png long.png log.png; do
    legend_boxes "$f" | awk -v f="$f" '$5 != 0 { print f ": legend " $1 "," $2 " covers " $5 " curve pixels"; bad = 1 } END { exit bad }' ||
        fail "no legend over a curve in $f" "$(legend_boxes "$f")"
done
# a panel where no place inside is free: the legend moves beside the plot
awk 'BEGIN { print "x,first_series_with_a_long_name,second_series_with_a_long_name"; for (i = 0; i < 200; i++) print i "," i % 2 "," (i + 1) % 2 }' >zig.csv
run plot-csv zig.csv --x x --y 1,2 --size 700x250 -o zig.png
read -r lx0 _ _ _ tint < <(legend_boxes zig.png)
[ "${tint:-1}" -eq 0 ] && [ "${lx0:-0}" -gt 400 ] ||
    fail "zig.png: the legend beside a plot full of lines, covering none" "$(legend_boxes zig.png)"
ok "legends: none covers a curve; with no free place inside, beside the plot"

# ---- train --plot: resumed runs draw every epoch, and the test result -----------------------------
train_args=(2-32-3 --data spirals --val-split 0.2 --optimizer adam --lr 0.01 --seed 4 -q
    --test spirals:40:3:0.2:9)
run train "${train_args[@]}" --epochs 6 -o whole.safetensors --log whole.csv --plot whole.png
run train "${train_args[@]}" --epochs 3 -o part.safetensors --log part.csv
run train "${train_args[@]}" --epochs 6 -o part.safetensors --log part.csv --resume --plot part.png
diff_px=$(probe --diff whole.png part.png)
[ "$diff_px" -eq 0 ] || fail "train --plot after --resume: the same picture as the uninterrupted run" "$diff_px pixels differ"
# control: resuming into a new log file knows only epochs 4-6, and the picture shows it
run train "${train_args[@]}" --epochs 3 -o p2.safetensors --log p2.csv
run train "${train_args[@]}" --epochs 6 -o p2.safetensors --log p2-new.csv --resume --plot p2.png
[ "$(probe --diff whole.png p2.png)" -gt 500 ] || fail "the control (epochs 4-6 only) to differ from the whole run"
red=$(count_colour whole.png E15759)
run train "${train_args[@]::12}" --epochs 2 -o nt.safetensors --plot nt.png
red0=$(count_colour nt.png E15759)
[ "$red" -gt 20 ] && [ "$red0" -eq 0 ] || fail "the --test result drawn (red marker), and not without --test" "$red vs $red0"
printf 'a,b\n1,2\n' >notlog.csv
run train "${train_args[@]}" --epochs 1 -o nl.safetensors
refuse 1 "notlog.csv: not a training log \(no column 'epoch'\)" train "${train_args[@]}" --epochs 2 \
    -o nl.safetensors --log notlog.csv --resume --plot nl.png
ok "train --plot: after --resume every epoch of the log (identical to an uninterrupted run's picture); the test result marked"

# a title longer than the picture (two long paths) shrinks, then gives up its middle, but stays
# inside: the outermost columns of the title band are white
long=a_directory_with_a_rather_long_name_to_make_the_title_long/and_one_more_level_of_it
mkdir -p "$long"
cp "$ROOT/examples/linear.nb" "$ROOT/examples/houses.csv" "$long/"
run train "$PWD/$long/linear.nb" --data "csv:$PWD/$long/houses.csv:price" --epochs 3 -q \
    -o lin.safetensors --plot lin.png
read -r lw _ < <(probe lin.png | head -n 1)
edges=$(( $(probe --nonwhite lin.png 0 0 6 34) + $(probe --nonwhite lin.png $((lw - 6)) 0 "$lw" 34) ))
[ "$edges" -eq 0 ] && [ "$(probe --nonwhite lin.png 0 0 "$lw" 34)" -gt 100 ] ||
    fail "a long title drawn within the picture" "$edges pixels at the edges of the title band"
ok "titles: a long one fits the picture"

# ---- the examples draw through the tool ---------------------------------------------------------
for ex in saturation gd_paths; do
    bin=$BUILD/examples/$ex
    if [ ! -x "$bin" ]; then
        skip "examples/$ex: $bin is not built"
        continue
    fi
    rc=0
    # from this scratch directory, without $NABLA: the example finds the tool beside itself
    env -u NABLA "$bin" --png "$ex.png" >"$ex.stdout" 2>"$ex.err" || rc=$?
    [ "$rc" -eq 0 ] || fail "examples/$ex --png to succeed" "exit $rc: $(tail -n 20 "$ex.err")"
    "$bin" >"$ex.table" 2>/dev/null || fail "examples/$ex without --png to succeed"
    cmp -s "$ex.table" "$ex.csv" || fail "examples/$ex: $ex.csv to be the table it prints without --png"
    [ ! -s "$ex.stdout" ] || fail "examples/$ex --png: the table in $ex.csv, not on stdout" "$(head -n 3 "$ex.stdout")"
    grep -q "wrote $ex.csv and $ex.png" "$ex.err" || fail "examples/$ex: say what it wrote" "$(cat "$ex.err")"
    read -r w h colours nonwhite < <(probe --stats "$ex.png")
    [ "$colours" -ge 50 ] || fail "$ex.png to have content" "$w×$h, $colours colours"
    panels=$([ "$ex" = saturation ] && echo 3 || echo 2)
    [ "$(legend_boxes "$ex.png" | wc -l)" -eq "$panels" ] &&
        legend_boxes "$ex.png" | awk '$5 != 0 { exit 1 }' ||
        fail "$ex.png: $panels legends, none over a curve" "$(legend_boxes "$ex.png")"
    ok "examples/$ex --png: the table in $ex.csv only, a $w×$h picture"
done

cli_finish cli_pictures
