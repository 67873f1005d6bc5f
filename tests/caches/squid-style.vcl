vcl 4.1;

# Varnish in front of the embedded edge (dialect origin: no cache headers of its own), saying
# what it did the way Squid does: "HIT from <host>" / "MISS from <host>" in X-Cache.
backend origin {
    .host = "127.0.0.1";
    .port = "ORIGIN_PORT";
}

sub vcl_deliver {
    # only the Squid-style X-Cache says what happened (X-Varnish would too)
    unset resp.http.X-Varnish;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT from " + server.hostname;
    } else {
        set resp.http.X-Cache = "MISS from " + server.hostname;
    }
}
