#!/bin/bash
# The public API from outside the tree:
#  1. examples/generate.c (public headers only), built in the tree, prints on
#     the real stories260K exactly what `flashblock generate` prints (greedy),
#     which is what llama2.c's run.c prints;
#  2. `cmake --install` to a fresh prefix, then the same example built with
#     nothing but `pkg-config --cflags --libs flashblock` (shared library)
#     and through the CMake package (find_package, static library): both
#     give the same text.
fb="$1"; example="$2"; build="$3"; src="$4"; data="${FLASHBLOCK_DATA:-$5}/llama2c"
cc="${6:-cc}"; extra="${7:-}"   # the build's compiler and flags (Sanitize: -fsanitize=...)
set -u
if [ ! -f "$data/stories260K.bin" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: $data/stories260K.bin missing (CI=true)"; exit 1; fi
    echo "SKIP: $data/stories260K.bin not found"; exit 77
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fail=0
die() { echo "FAIL: $*"; fail=1; }
ref="$data/reference/stories260K_greedy_lily.txt"
m="$data/stories260K.bin" z="$data/tok512.bin"

"$fb" generate -m "$m" -z "$z" -p "Lily wanted to" -n 256 --temp 0 --quiet > "$work/cli.txt" || die "flashblock generate failed"
"$example" "$m" "$z" "Lily wanted to" 256 > "$work/ex.txt" || die "example failed"
cmp -s "$work/cli.txt" "$work/ex.txt" && echo "ok: examples/generate.c prints what flashblock generate prints" \
    || { die "example output differs from flashblock generate"; diff "$work/cli.txt" "$work/ex.txt" | head -5; }
cmp -s "$work/ex.txt" "$ref" && echo "ok: and both equal run.c's reference" || die "example output differs from run.c's"
# sampled: the example and the CLI share the sampler and seed rules
"$fb" generate -m "$m" -z "$z" -p "Once upon" -n 120 --temp 0.8 --top-p 0.9 --seed 7 --quiet > "$work/cli2.txt" || die "generate (sampled)"
"$example" "$m" "$z" "Once upon" 120 0.8 7 > "$work/ex2.txt" || die "example (sampled)"
cmp -s "$work/cli2.txt" "$work/ex2.txt" && echo "ok: sampled at temperature 0.8, seed 7: identical" || die "sampled outputs differ"

# install, then build against the installed copy only
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log" || { die "cmake --install failed"; cat "$work/install.log"; }
pc=$(dirname "$(find "$work/prefix" -name flashblock.pc | head -1)")
[ -n "$pc" ] && [ -f "$pc/flashblock.pc" ] || die "no flashblock.pc installed"
for f in include/flashblock.h include/flashblock_infer.h include/flashblock_tokenizer.h bin/flashblock; do
    [ -e "$work/prefix/$f" ] || die "not installed: $f"
done
ls "$pc/.."/libflashblock.a "$pc/.."/libflashblock.so >/dev/null || die "libraries not installed next to pkgconfig/"
export PKG_CONFIG_PATH="$pc"
flags=$(pkg-config --cflags --libs flashblock) || die "pkg-config --cflags --libs flashblock failed"
$cc "$src/examples/generate.c" $flags $extra -o "$work/gen_pc" || die "the example does not build with pkg-config flags: $flags"
LD_LIBRARY_PATH="$pc/.." "$work/gen_pc" "$m" "$z" "Lily wanted to" 256 > "$work/pc.txt" || die "pkg-config build failed to run"
ldd "$work/gen_pc" | grep -q "libflashblock.so" || die "the pkg-config build is not linked to the shared library"
cmp -s "$work/pc.txt" "$ref" && echo "ok: built with pkg-config only (shared library): run.c's text" || die "pkg-config build output differs"

mkdir -p "$work/pkg"
cp "$src/examples/generate.c" "$work/pkg/"
cat > "$work/pkg/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(uses_flashblock C)
find_package(flashblock REQUIRED)
add_executable(gen generate.c)
target_link_libraries(gen PRIVATE flashblock::flashblock)
CM
cmake -S "$work/pkg" -B "$work/pkg/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="$extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" > "$work/pkg.log" 2>&1 \
    && cmake --build "$work/pkg/build" >> "$work/pkg.log" 2>&1 || { die "find_package(flashblock) build failed"; tail -20 "$work/pkg.log"; }
"$work/pkg/build/gen" "$m" "$z" "Lily wanted to" 256 > "$work/cm.txt" || die "CMake package build failed to run"
cmp -s "$work/cm.txt" "$ref" && echo "ok: built through find_package(flashblock) (static library): run.c's text" || die "CMake package build output differs"
exit $fail
