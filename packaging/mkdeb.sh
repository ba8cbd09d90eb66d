#!/bin/sh
# packaging/mkdeb.sh VERSION — build build/vigil_VERSION_ARCH.deb with
# dpkg-deb from `make install PREFIX=/usr` staged in build/deb/.
# Run by `make deb` after the build; needs dpkg-deb (dpkg) only.
set -eu
version=$1
arch=$(dpkg --print-architecture)
stage=build/deb
out=build/vigil_${version}_${arch}.deb
rm -rf "$stage"
make --no-print-directory install PREFIX=/usr DESTDIR="$PWD/$stage" >/dev/null
# Debian policy: compressed man pages, stripped binaries.
gzip -9n "$stage"/usr/share/man/man1/vigil.1 "$stage"/usr/share/man/man3/libvigil.3
strip --strip-unneeded "$stage"/usr/lib/libvigil.so.* "$stage"/usr/bin/vigil
strip --strip-debug "$stage"/usr/lib/libvigil.a

# Depends: the packages that own the libraries libvigil.so links at run
# time (the daemon is static), as dpkg-shlibdeps would find them.
depends=$(ldd build/libvigil.so."$version" | awk '$3 ~ /^\// { print $3 }' |
	while read -r lib; do
		dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true
	done | sed 's/:.*//' | sort -u | paste -sd, | sed 's/,/, /g')

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@DEPENDS@|$depends|" \
	-e "s|@SIZE@|$size|" packaging/control.in > "$stage/DEBIAN/control"
# A new shared library: let dpkg run ldconfig once at the end.
echo "activate-noawait ldconfig" > "$stage/DEBIAN/triggers"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' |
	LC_ALL=C sort | xargs md5sum) > "$stage/DEBIAN/md5sums"
dpkg-deb --root-owner-group --build "$stage" "$out" >/dev/null
echo "$out"
