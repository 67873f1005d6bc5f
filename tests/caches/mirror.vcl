vcl 4.1;

# The CDN under test in the mirror integration test: Varnish caching in front of the embedded
# edge (as origin). X-Cache says what Varnish did; the origin's own cache headers are removed.
backend origin {
    .host = "127.0.0.1";
    .port = "ORIGIN_PORT";
}

sub vcl_recv {
    unset req.http.Cookie;
    unset req.http.Authorization;
}

sub vcl_deliver {
    unset resp.http.X-Served-By;
    unset resp.http.X-Cache-Hits;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
