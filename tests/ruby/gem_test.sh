#!/bin/sh
# SPDX-License-Identifier: MIT
# The Ruby binding as Ruby users install it (bindings/ruby): `gem build`
# from its gemspec, `gem install --local` into a fresh GEM_HOME (offline:
# fiddle, its one dependency, is Ruby's own), then used from outside the
# repository - the version is the project's, a breaker opens fail-open,
# calls run and trip - and, with no CBSHM_LIBRARY and no installed
# library, `require "cbshm"` raises a LoadError that says what it tried
# and what to install (skipped where a libcbshm.so.1 is installed).
#   usage: gem_test.sh SOURCE_DIR LIBRARY PROJECT_VERSION
set -eu
src=$(cd "$1" && pwd) lib=$(realpath "$2") want=$3
ruby=/usr/bin/ruby
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
    echo "ruby gem: $*"
    exit 1
}
[ -f "$lib" ] || fail "no library at $lib"
gem_path=$($ruby -e 'print Gem.default_path.join(":")')
# As a fresh machine runs it: no ~/.gemrc or GEM_* variable of this one.
run() {
    env -i PATH=/usr/bin:/bin HOME="$work" GEM_HOME="$work/gems" GEM_PATH="$work/gems:$gem_path" "$@"
}

(cd "$src/bindings/ruby" && run gem build cbshm.gemspec -o "$work/cbshm.gem") >"$work/out" 2>&1 ||
    { cat "$work/out"; fail "gem build failed"; }
run gem install --local --no-document "$work/cbshm.gem" >"$work/out" 2>&1 ||
    { cat "$work/out"; fail "gem install failed"; }

cd "$work"
cat >"$work/use.rb" <<'RUBY'
require "cbshm"
installed = File.join(ENV["GEM_HOME"], "gems")
where = $LOADED_FEATURES.grep(%r{/cbshm\.rb\z}).first
abort "cbshm.rb came from #{where}, not the installed gem" unless where.start_with?(installed)
abort "gem #{Cbshm::VERSION} != library #{Cbshm.version}" unless Cbshm::VERSION == Cbshm.version
abort "gem #{Cbshm::VERSION} != project #{ARGV[0]}" unless Cbshm::VERSION == ARGV[0]
seg = "/cbshm-rb-gem-#{Process.pid}"
b = Cbshm.open_breaker(seg, "api", failure_exceptions: [IOError])
abort "no segment, yet no error" unless b.error&.errname == "CBSHM_ENOSEG"
Cbshm.apply("breakers:\n  - name: api\n    failure_threshold: 2\n", segment: seg)
begin
  deadline = Time.now + 5
  sleep 0.05 while b.acquire { b.error } && Time.now < deadline
  2.times { b.acquire { raise IOError } rescue nil }
  begin
    b.acquire { abort "ran while open" }
    abort "not tripped"
  rescue Cbshm::OpenCircuitError => e
    puts "installed gem #{Cbshm::VERSION}: #{e.message}"
  end
ensure
  b.close
  Cbshm.destroy(seg)
end
RUBY
run CBSHM_LIBRARY="$lib" $ruby "$work/use.rb" "$want" || fail "the installed gem does not work"

if env -i PATH=/usr/bin:/bin $ruby -rfiddle -e 'Fiddle.dlopen("libcbshm.so.1")' 2>/dev/null; then
    echo "ruby gem: the no-library check skipped: a libcbshm.so.1 is installed on this machine"
    exit 0
fi
rc=0
run $ruby -e 'require "cbshm"' >"$work/out" 2>&1 || rc=$?
cat "$work/out"
[ $rc = 1 ] || fail "require \"cbshm\" without a library exits $rc, not 1"
for says in "cannot load libcbshm: tried libcbshm.so.1" "(Cbshm::LibraryError)" \
    "Install the libcbshm1 package" "set CBSHM_LIBRARY to the path of libcbshm.so.1"; do
    grep -qF "$says" "$work/out" || fail "the error does not say \"$says\""
done
echo "ruby gem: built, installed, used; without a library it says what to install"
