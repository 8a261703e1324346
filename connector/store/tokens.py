"""Scripts over a key that holds its holder's token (a lock or a lease): only the holder may end it."""

# KEYS: the key. ARGV: the caller's token. Deletes the key only while it holds that token (a holder
# whose time ran out must not end its successor's); returns 1 when it did, else 0.
DELETE_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
