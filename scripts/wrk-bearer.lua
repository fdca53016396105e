-- wrk script: every request carries the access token from $VESTNIK_TOKEN.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("VESTNIK_TOKEN")
