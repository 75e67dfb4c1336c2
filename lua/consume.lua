-- consume.lua: take COST tokens from every bucket in KEYS, or from none of them.
--
-- Generic cell rate algorithm (GCRA): a bucket stores only its theoretical
-- arrival time (TAT), the moment at which it would be full again. A missing
-- key is a full bucket.
--
-- KEYS[i]      token bucket i: string, TAT in seconds since the Unix epoch on
--              the Redis clock, written "SECONDS.FRACTION" with 15 decimals
-- ARGV[1]      cost: tokens to take from each bucket (integer, >= 1)
-- ARGV[2*i]    emission interval of bucket i: nanoseconds per token (1e9 / rate)
-- ARGV[2*i+1]  burst of bucket i: capacity in tokens (integer, >= 1)
--
-- Returns {allowed, retry_after_us, remaining}:
--   allowed         1 when every bucket had the tokens and all were taken, else 0
--   retry_after_us  0 when allowed, else microseconds (rounded up) until the same
--                   request would pass
--   remaining       smallest token count left among the buckets, as a string
--
-- Writes each key of an allowed call with a TTL equal to the time until that
-- bucket is full again; a denied call writes nothing.

local cost = tonumber(ARGV[1])

-- A call may pass this many nanoseconds early: it absorbs the rounding of
-- TATs to whole femtoseconds, and is far below one token (at least 10 us).
local SLACK_NS = 1
local NS_PER_S = 1e9
local FS_PER_NS = 1e6

local clock = redis.call('TIME')
local now_s = tonumber(clock[1])
local now_ns = tonumber(clock[2]) * 1000

-- A Lua number (a double) cannot hold epoch time in nanoseconds exactly, so
-- the TAT is split into whole seconds and nanoseconds within the second.
local function debt_ns(key)
    local value = redis.call('GET', key)
    if not value then
        return 0
    end

    local tat_s, tat_fs = string.match(value, '^(%d+)%.(%d+)$')
    local debt = (tonumber(tat_s) - now_s) * NS_PER_S + (tonumber(tat_fs) / FS_PER_NS - now_ns)
    if debt < 0 then
        return 0
    end
    return debt
end

local function write_tat(key, debt)
    local total_ns = now_ns + debt
    local carry_s = math.floor(total_ns / NS_PER_S)
    local fs = math.floor((total_ns - carry_s * NS_PER_S) * FS_PER_NS + 0.5)
    if fs >= NS_PER_S * FS_PER_NS then
        carry_s = carry_s + 1
        fs = fs - NS_PER_S * FS_PER_NS
    end

    local value = string.format('%.0f.%015.0f', now_s + carry_s, fs)
    local ttl_ms = math.ceil(debt / 1e6)
    redis.call('SET', key, value, 'PX', ttl_ms)
end

local count = #KEYS
local new_debts = {}
local allowed = true
local wait_ns = 0
local remaining_now = nil
local remaining_after = nil

for i = 1, count do
    local interval = tonumber(ARGV[2 * i])
    local burst = tonumber(ARGV[2 * i + 1])
    local capacity = burst * interval
    local debt = debt_ns(KEYS[i])
    local new_debt = debt + cost * interval

    new_debts[i] = new_debt
    if new_debt - capacity > SLACK_NS then
        allowed = false
        wait_ns = math.max(wait_ns, new_debt - capacity)
    end

    local tokens_now = math.max(0, (capacity - debt) / interval)
    local tokens_after = math.max(0, (capacity - new_debt) / interval)
    if remaining_now == nil or tokens_now < remaining_now then
        remaining_now = tokens_now
    end
    if remaining_after == nil or tokens_after < remaining_after then
        remaining_after = tokens_after
    end
end

if not allowed then
    return {0, math.ceil(wait_ns / 1000), string.format('%.17g', remaining_now)}
end

for i = 1, count do
    write_tat(KEYS[i], new_debts[i])
end
return {1, 0, string.format('%.17g', remaining_after)}
