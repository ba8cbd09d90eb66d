# packaging/install.mk — included by the Makefile: make install / uninstall /
# deb.  Paths follow the GNU conventions; DESTDIR stages into a tree.
#
#   make install PREFIX=/usr/local DESTDIR=/tmp/stage
#
# installs the header, libvigil.so.$(VERSION) with its soname link
# ($(SO_NAME)) and development link (libvigil.so), libvigil.a, vigil.pc,
# the vigil binary, vigil(1) and libvigil(3), the systemd unit, and the
# license as $(DOCDIR)/copyright (where Debian policy wants it).

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/vigil
# Debian 12 keeps the system's units in /lib; anything else uses its prefix
# (systemd also reads /usr/local/lib/systemd/system).
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
INSTALL    ?= install

# Everything the install rule copies, relative to DESTDIR (uninstall and the
# Debian package use the same list).
INSTALLED_FILES = $(INCLUDEDIR)/vigil.h $(LIBDIR)/$(SO_REAL) $(LIBDIR)/$(SO_NAME) \
	$(LIBDIR)/libvigil.so $(LIBDIR)/libvigil.a $(LIBDIR)/pkgconfig/vigil.pc \
	$(BINDIR)/vigil $(MANDIR)/man1/vigil.1 $(MANDIR)/man3/libvigil.3 \
	$(UNITDIR)/vigil.service $(DOCDIR)/copyright

subst = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	-e 's|@VERSION@|$(VERSION)|g'

install: build/libvigil.a build/$(SO_REAL) $(build_AGENT)
	$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 644 include/vigil.h $(DESTDIR)$(INCLUDEDIR)/vigil.h
	$(INSTALL) -m 644 build/$(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SO_REAL)
	ln -sf $(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SO_NAME)
	ln -sf $(SO_NAME) $(DESTDIR)$(LIBDIR)/libvigil.so
	$(INSTALL) -m 644 build/libvigil.a $(DESTDIR)$(LIBDIR)/libvigil.a
	$(subst) packaging/vigil.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/vigil.pc
	$(INSTALL) -m 755 build/vigil $(DESTDIR)$(BINDIR)/vigil
	$(INSTALL) -m 644 docs/man/vigil.1 $(DESTDIR)$(MANDIR)/man1/vigil.1
	$(INSTALL) -m 644 docs/man/libvigil.3 $(DESTDIR)$(MANDIR)/man3/libvigil.3
	$(subst) packaging/vigil.service.in > $(DESTDIR)$(UNITDIR)/vigil.service
	$(INSTALL) -m 644 LICENSE $(DESTDIR)$(DOCDIR)/copyright
	@if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null; then ldconfig; fi

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED_FILES))
	@if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null; then ldconfig; fi

# The Debian package: the same install, staged under /usr, then dpkg-deb.
deb: build/libvigil.a build/$(SO_REAL) $(build_AGENT)
	packaging/mkdeb.sh $(VERSION)
