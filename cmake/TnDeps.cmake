# Every dependency is a Debian package found with pkg-config.
find_package(PkgConfig REQUIRED)
pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(PQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(CRYPTO REQUIRED IMPORTED_TARGET libcrypto)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
# h2o's library ships picohttpparser (phr_*), which tn_httpd uses.
pkg_check_modules(H2O REQUIRED IMPORTED_TARGET libh2o)
# tern-calsync only: iCalendar (libical) and CalDAV's XML (libxml2).
pkg_check_modules(ICAL REQUIRED IMPORTED_TARGET libical)
pkg_check_modules(XML2 REQUIRED IMPORTED_TARGET libxml-2.0)
