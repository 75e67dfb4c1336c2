-- cooldown.lua: start or extend an IP's reconnect cooldown. A running cooldown
-- that ends later is kept as it is (max-merge).
--
-- KEYS[1]  cooldown of the IP: string, end of the cooldown in microseconds since
--          the Unix epoch (Redis clock)
-- ARGV[1]  duration in microseconds (integer, >= 1)
--
-- Returns the microseconds left on the cooldown after the merge. The key's TTL
-- is the time left, rounded up to a millisecond.

local duration_us = tonumber(ARGV[1])

local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local new_end = now_us + duration_us

local current_end = tonumber(redis.call('GET', KEYS[1]))
if current_end and current_end >= new_end then
    return current_end - now_us
end

redis.call('SET', KEYS[1], string.format('%.0f', new_end), 'PX', math.ceil(duration_us / 1000))
return duration_us
