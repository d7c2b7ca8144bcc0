//! Real clients (glibc, musl, Go) resolving Consul services that splitdns answers from its
//! mirror of the catalog.
