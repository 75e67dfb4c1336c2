-- release.lua: drop one connection lease. Dropping an unknown or already
-- released lease changes nothing.
--
-- KEYS[1]  leases of the IP: sorted set, member = connection digest,
--          score = lease expiry in microseconds since the Unix epoch (Redis clock)
-- ARGV[1]  member: digest of the connection id
--
-- Returns 1 when a lease was removed, else 0. After a removal the sorted set's
-- TTL follows its latest remaining lease expiry.

local member = ARGV[1]

if redis.call('ZREM', KEYS[1], member) == 0 then
    return 0
end

local latest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #latest == 0 then
    return 1
end

local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local ttl_ms = math.ceil((tonumber(latest[2]) - now_us) / 1000)
if ttl_ms > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl_ms)
else
    redis.call('DEL', KEYS[1])
end
return 1
