// The DynamoDB StateStore (state/dynamodb_store.hpp): the table layout and the store's
// parts are described in state/dynamodb_store_internal.hpp.
#include "state/dynamodb_store.hpp"

#include "state/dynamodb_store_internal.hpp"

namespace streamscore {

namespace dynamodb_detail {

WriterKeys keys_of_writer(const std::string& name) {
  return {name, "LOG#" + name, "w#" + name, "DEDUP#" + name, std::string(kMetaPk) + "#" + name};
}

Status DynamoDbStore::open() {
  return guarded("open", [&] {
    Status s = check_table();
    if (!s.is_ok() || (!options().bulk_load && !(s = check_layout()).is_ok()) || !(s = register_writer()).is_ok() ||
        !(s = load_partition_index()).is_ok())
      return s;
    if (options().bulk_load) return Status::ok();
    if (!(s = find_backfill_parts()).is_ok()) return s;
    return recover_writer(self_, /*own=*/true);
  });
}

Status DynamoDbStore::recover_other_writers() {
  return guarded("recover_other_writers", [&] {
    std::vector<std::string> writers;
    Status s = list_writers(&writers);
    for (std::size_t i = 0; s.is_ok() && i < writers.size(); ++i)
      if (writers[i] != self_.name) s = recover_writer(keys_of_writer(writers[i]), /*own=*/false);
    return s;
  });
}

Status DynamoDbStore::take_over(const std::vector<std::string>& partitions) {
  return guarded("take_over", [&] {
    std::lock_guard<std::mutex> lock(commit_mu_);  // no commit of this writer in between
    int64_t lease = 0;
    Status s = next_lease(&lease);
    if (!s.is_ok() || !(s = set_own_lease(lease)).is_ok()) return s;
    lease_ = lease;
    for (const std::string& partition : partitions) {
      std::string holder;
      int64_t held_under = 0;
      const bool kept = claimed_.count(partition) > 0;
      if (!(s = claim(partition, lease, kept, &holder, &held_under)).is_ok()) {
        if (!s.is_fenced()) return s;
        // Outdated: the marker carries the new lease already, taken away again so that
        // nothing of this writer lands; its rejoin starts from a lease that holds nothing.
        claimed_.clear();
        return fence_self(lease, s);
      }
      if (!holder.empty() && holder != self_.name && !(s = fence(holder, held_under)).is_ok()) return s;
    }
    claimed_ = std::set<std::string>(partitions.begin(), partitions.end());
    return Status::ok();
  });
}

Status DynamoDbStore::get(std::string_view pk, ItemRecord* out) {
  return guarded("get", [&] { return get_item(pk, out); });
}

Status DynamoDbStore::commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) {
  return guarded("commit", [&] { return do_commit(writes, conflicts); });
}

Status DynamoDbStore::scan_dedup(const std::function<bool(const DedupRecord&)>& fn) {
  return guarded("scan_dedup", [&] { return do_scan_dedup(fn); });
}

Status DynamoDbStore::scan(const std::function<bool(const ItemRecord&)>& fn) {
  return guarded("scan", [&] { return do_scan(fn); });
}

Status DynamoDbStore::scan_partitions(const PartitionScope& scope,
                                      const std::function<bool(const ItemRecord&)>& item_fn,
                                      const std::function<bool(const DedupRecord&)>& dedup_fn) {
  if (scope.count <= 0) return StateStore::scan_partitions(scope, item_fn, dedup_fn);
  return guarded("scan_partitions", [&] { return do_scan_partitions(scope, item_fn, dedup_fn); });
}

Status DynamoDbStore::put_meta(std::string_view key, std::string_view value) {
  return guarded("put_meta", [&] {
    Status s = check_meta(key, value);
    if (!s.is_ok()) return s;
    json::object reply;
    return client_.call("PutItem", {{"TableName", table()}, {"Item", meta_item(self_, key, value, next_sequence())}},
                        &reply);
  });
}

Status DynamoDbStore::get_meta(std::string_view key, std::string* value) {
  return guarded("get_meta", [&] {
    json::object item;
    Status s = get_raw(meta_pk(self_, key), hex(key), &item);
    for (std::size_t i = 0; s.is_not_found() && !is_table_meta(key) && i < parts_.size(); ++i)
      s = get_raw(parts_[i].meta_pk, hex(key), &item);  // not written yet: the backfill's
    if (!s.is_ok()) return s.is_not_found() ? Status::not_found("meta key " + printable(key)) : s;
    if (!get_b(item, "value", value)) return Status::corruption("meta key " + printable(key) + " has no value");
    return Status::ok();
  });
}

Status DynamoDbStore::clear() {
  return guarded("clear", [&] { return do_clear(); });
}

std::vector<StateStore::Counter> DynamoDbStore::counters() const {
  return options().metrics->counters();
}

Status DynamoDbStore::check_table() {
  json::object reply;
  ApiError e;
  Status s = client_.call("DescribeTable", {{"TableName", table()}}, &reply, &e);
  if (e.type == "ResourceNotFoundException")
    return Status::io_error("DynamoDB table '" + table() + "' does not exist at " + options().endpoint +
                            ": create it with 'streamscore dynamodb create-table'");
  return s;
}

Status DynamoDbStore::get_raw(std::string_view pk, std::string_view sk, json::object* item) {
  json::object reply;
  Status s =
      client_.call("GetItem", {{"TableName", table()}, {"Key", key_of(pk, sk)}, {"ConsistentRead", true}}, &reply);
  if (!s.is_ok()) return s;
  const json::value* it = reply.if_contains("Item");
  if (!it || !it->is_object()) return Status::not_found();
  *item = std::move(it->as_object());
  return Status::ok();
}

Status DynamoDbStore::decode_item(const json::object& item, ItemRecord* out) {
  if (!get_s(item, "PK", &out->pk)) return Status::corruption("DynamoDB item without a string PK");
  const bool has_version = get_n(item, "version", &out->version) && out->version >= 0;
  std::string data;
  if (has_version && get_b(item, "data", &data)) {
    Status s = decode_item_data(data, kItemLimit, &out->item_json, &out->internal);
    return s.is_ok() ? s : Status::corruption("DynamoDB item '" + printable(out->pk) + "': " + s.message());
  }
  if (!has_version || !get_b(item, "item_json", &out->item_json) || !get_b(item, "state", &out->internal))
    return Status::corruption("DynamoDB item '" + printable(out->pk) +
                              "' is malformed: needs version (N >= 0) and data (B), or item_json (B) and state (B)");
  return Status::ok();
}

Status DynamoDbStore::get_item(std::string_view pk, ItemRecord* out) {
  json::object item;
  Status s = get_raw(pk, kItemSk, &item);
  if (s.is_not_found()) return Status::not_found("item " + printable(pk));
  return s.is_ok() ? decode_item(item, out) : s;
}

std::string DynamoDbStore::meta_pk(const WriterKeys& w, std::string_view key) {
  return is_table_meta(key) ? std::string(kMetaPk) : w.meta_pk;
}

json::object DynamoDbStore::meta_item(const WriterKeys& w, std::string_view key, std::string_view value, uint64_t seq) {
  json::object item = key_of(meta_pk(w, key), hex(key));
  item["value"] = attr_b(value);
  item["seq"] = attr_n(static_cast<int64_t>(seq));
  return item;
}

Status DynamoDbStore::check_meta(std::string_view key, std::string_view value) {
  if (2 * key.size() + value.size() + 64 > kItemLimit)
    return Status::invalid_argument("meta key " + printable(key) + ": " + std::to_string(value.size()) +
                                    " bytes do not fit one DynamoDB item (400 KB)");
  return Status::ok();
}

Status DynamoDbStore::until_processed(const char* op, json::array pending,
                                      const std::function<Status(json::array batch, json::array* unprocessed)>& send) {
  for (int attempt = 1; !pending.empty(); ++attempt) {
    if (attempt > 1) {
      if (attempt > options().max_attempts)
        return Status::io_error("DynamoDB " + std::string(op) + ": still unprocessed after " +
                                std::to_string(options().max_attempts) + " attempts");
      metrics().throttles.fetch_add(1, std::memory_order_relaxed);
      client_.backoff(attempt - 1);
    }
    json::array unprocessed;
    Status s = send(std::move(pending), &unprocessed);
    if (!s.is_ok()) return s;
    pending = std::move(unprocessed);
  }
  return Status::ok();
}

json::value* DynamoDbStore::table_part(json::object& reply, const char* field) {
  json::value* v = reply.if_contains(field);
  return v && v->is_object() ? v->as_object().if_contains(table()) : nullptr;
}

Status DynamoDbStore::in_groups(const std::vector<json::object>& all, std::size_t size,
                                const std::function<Status(json::array group)>& fn) {
  const std::size_t groups = (all.size() + size - 1) / size;
  return parallel_for(groups, options().parallel_requests, [&](std::size_t g) {
    json::array group;
    for (std::size_t i = g * size; i < std::min(all.size(), (g + 1) * size); ++i) group.push_back(all[i]);
    return fn(std::move(group));
  });
}

Status DynamoDbStore::batch_write(const std::vector<json::object>& requests) {
  return in_groups(requests, kBatchWrite, [&](json::array group) {
    return until_processed("BatchWriteItem", std::move(group), [&](json::array batch, json::array* unprocessed) {
      json::object reply;
      Status s = client_.call("BatchWriteItem", {{"RequestItems", {{table(), std::move(batch)}}}}, &reply);
      if (json::value* u = s.is_ok() ? table_part(reply, "UnprocessedItems") : nullptr; u && u->is_array())
        *unprocessed = std::move(u->as_array());
      return s;
    });
  });
}

Status DynamoDbStore::batch_get(const std::vector<json::object>& keys, const char* projection,
                                const std::function<void(json::object&)>& fn) {
  return in_groups(keys, kBatchGet, [&](json::array group) {
    return until_processed("BatchGetItem", std::move(group), [&](json::array batch, json::array* unprocessed) {
      json::object request{{"Keys", std::move(batch)}, {"ConsistentRead", true}};
      if (projection) {
        request["ProjectionExpression"] = projection;
        request["ExpressionAttributeNames"] = {{"#pk", "PK"}, {"#v", "version"}};
      }
      json::object reply;
      Status s = client_.call("BatchGetItem", {{"RequestItems", {{table(), std::move(request)}}}}, &reply);
      if (!s.is_ok()) return s;
      if (json::value* mine = table_part(reply, "Responses"); mine && mine->is_array()) {
        metrics().rows_read.fetch_add(mine->as_array().size(), std::memory_order_relaxed);
        for (json::value& item : mine->as_array())
          if (item.is_object()) fn(item.as_object());
      }
      if (json::value* u = table_part(reply, "UnprocessedKeys"); u && u->is_object())
        if (json::value* k = u->as_object().if_contains("Keys"); k && k->is_array())
          *unprocessed = std::move(k->as_array());
      return Status::ok();
    });
  });
}

Status DynamoDbStore::get_items(const std::vector<json::object>& keys, std::map<std::string, ItemRecord>* found) {
  std::mutex mu;
  Status bad;
  Status s = batch_get(keys, nullptr, [&](json::object& item) {
    ItemRecord r;
    Status d = decode_item(item, &r);
    std::lock_guard<std::mutex> lock(mu);
    if (!d.is_ok())
      bad = d;
    else
      (*found)[r.pk] = std::move(r);
  });
  return s.is_ok() ? bad : s;
}

Status DynamoDbStore::query(json::object request, const std::function<Status(json::object&)>& fn) {
  request["TableName"] = table();
  request["ConsistentRead"] = true;
  for (;;) {
    json::object reply;
    Status s = client_.call("Query", request, &reply);
    if (!s.is_ok()) return s;
    count_rows_read(reply);
    if (json::value* items = reply.if_contains("Items"); items && items->is_array())
      for (json::value& item : items->as_array())
        if (item.is_object() && !(s = fn(item.as_object())).is_ok()) return s;
    json::value* last = reply.if_contains("LastEvaluatedKey");
    if (!last || !last->is_object()) return Status::ok();
    request["ExclusiveStartKey"] = std::move(*last);
  }
}

void DynamoDbStore::count_rows_read(const json::object& reply) {
  int64_t scanned = 0;
  if (const json::value* n = reply.if_contains("ScannedCount"); n && n->is_int64()) scanned = n->as_int64();
  metrics().rows_read.fetch_add(static_cast<uint64_t>(std::max<int64_t>(0, scanned)), std::memory_order_relaxed);
}

Status DynamoDbStore::scan_keys(bool items_only, std::vector<std::pair<std::string, std::string>>* keys) {
  json::object request{{"TableName", table()},
                       {"ProjectionExpression", "#pk, #sk"},
                       {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}}};
  if (items_only) {
    request["FilterExpression"] = "#sk = :s";
    request["ExpressionAttributeValues"] = {{":s", attr_s(kItemSk)}};
  }
  for (;;) {
    json::object reply;
    Status s = client_.call("Scan", request, &reply);
    if (!s.is_ok()) return s;
    count_rows_read(reply);
    if (json::value* items = reply.if_contains("Items"); items && items->is_array())
      for (json::value& item : items->as_array()) {
        std::string pk, sk;
        if (item.is_object() && get_s(item.as_object(), "PK", &pk) && get_s(item.as_object(), "SK", &sk))
          keys->emplace_back(std::move(pk), std::move(sk));
      }
    json::value* last = reply.if_contains("LastEvaluatedKey");
    if (!last || !last->is_object()) return Status::ok();
    request["ExclusiveStartKey"] = std::move(*last);
  }
}

void DynamoDbStore::collect_garbage(int64_t forget_day) {
  if (forget_day != kNoDay && forget_day > gc_day_) {
    gc_day_ = forget_day;
    gc_more_ = true;
  }
  if (!gc_more_ || options().gc_deletes_per_checkpoint == 0) return;
  const GcPolicy policy{options().gc_deletes_per_checkpoint, static_cast<uint64_t>(options().gc_idle_ms) * 1000};
  const uint64_t now_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  GcPass pass;
  Status s =
      guarded("collect", [&] { return collect_gone_writers(*this, self_.name, gc_day_, now_us, policy, &pass); });
  metrics().gc_deleted.fetch_add(pass.deleted, std::memory_order_relaxed);
  metrics().gc_writers.fetch_add(pass.writers_removed, std::memory_order_relaxed);
  if (!s.is_ok()) metrics().gc_failures.fetch_add(1, std::memory_order_relaxed);
  gc_more_ = pass.more || !s.is_ok();
}

Status DynamoDbStore::sight(const std::string& name, WriterSighting* out) {
  const WriterKeys w = keys_of_writer(name);
  *out = WriterSighting{};
  json::object marker;
  Status s = get_raw(w.log_pk, kMarkerSk, &marker);
  if (s.is_not_found()) return Status::ok();
  int64_t seq = 0;
  if (!s.is_ok() || !get_n(marker, "seq", &seq)) return s;  // a lease alone: no commit yet
  out->has_marker = true;
  out->last_commit_us = static_cast<uint64_t>(seq);
  out->pending = is_true(marker, "pending");
  out->collecting = is_true(marker, "gc");
  // Its newest dedup record, under its own key and in each partition's index (records
  // sort by day first): ids in the index inside the horizon keep it alive as well.
  s = newest_dedup_day(w.dedup_pk, "", out);
  const int32_t count = partition_count_;
  for (int32_t p = 0; s.is_ok() && p < count; ++p)
    s = newest_dedup_day(partition_index_pk(count, p), dedup_entry_prefix(w), out);
  if (s.code() == Status::Code::corruption) return Status::corruption(s.message() + " of writer '" + name + "'");
  return s;
}

Status DynamoDbStore::newest_dedup_day(const std::string& pk, const std::string& prefix, WriterSighting* out) {
  json::object request{{"TableName", table()},
                       {"ConsistentRead", true},
                       {"KeyConditionExpression", "#pk = :p"},
                       {"ProjectionExpression", "#sk"},
                       {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
                       {"ExpressionAttributeValues", {{":p", attr_s(pk)}}},
                       {"ScanIndexForward", false},
                       {"Limit", 1}};
  with_sk_prefix(prefix, &request);
  json::object reply;
  Status s = client_.call("Query", request, &reply);
  const json::value* items = s.is_ok() ? reply.if_contains("Items") : nullptr;
  if (!items || !items->is_array() || items->as_array().empty() || !items->as_array()[0].is_object()) return s;
  std::string sk, key;
  DedupRecord newest;
  const bool named = get_s(items->as_array()[0].as_object(), "SK", &sk) && sk.size() > prefix.size();
  const std::string_view head = named ? std::string_view(sk).substr(prefix.size()) : std::string_view();
  if (!named || !unhex(head.substr(0, head.find('#')), &key) || !parse_dedup_record_key(key, &newest))
    return Status::corruption("malformed dedup item '" + printable(sk) + "'");
  out->newest_dedup_day = out->has_dedup ? std::max(out->newest_dedup_day, newest.day) : newest.day;
  out->has_dedup = true;
  return Status::ok();
}

void DynamoDbStore::with_sk_prefix(const std::string& prefix, json::object* request) {
  if (prefix.empty()) return;
  (*request)["KeyConditionExpression"] = "#pk = :p AND begins_with(#sk, :prefix)";
  (*request)["ExpressionAttributeNames"].as_object()["#sk"] = "SK";
  (*request)["ExpressionAttributeValues"].as_object()[":prefix"] = attr_s(prefix);
}

Status DynamoDbStore::mark_collecting(const std::string& name, uint64_t last_commit_us) {
  json::object reply;
  return client_.call("UpdateItem",
                      {{"TableName", table()},
                       {"Key", key_of(keys_of_writer(name).log_pk, kMarkerSk)},
                       {"UpdateExpression", "SET #gc = :yes"},
                       {"ConditionExpression", "#s = :seq AND #p = :no"},
                       {"ExpressionAttributeNames", {{"#gc", "gc"}, {"#s", "seq"}, {"#p", "pending"}}},
                       {"ExpressionAttributeValues",
                        {{":yes", {{"BOOL", true}}},
                         {":no", {{"BOOL", false}}},
                         {":seq", attr_n(static_cast<int64_t>(last_commit_us))}}}},
                      &reply);
}

Status DynamoDbStore::delete_leftovers(const std::string& name, std::size_t budget, std::size_t* deleted) {
  const WriterKeys w = keys_of_writer(name);
  // (partition key, SK prefix): its own keys only. Its records in the partitions' index are
  // left to each partition's holder, who forgets them by the partition's clock: the
  // collector's clocks may be ahead of it (gone for the collector is not forgotten there).
  std::vector<std::pair<std::string, std::string>> keys{{w.dedup_pk, ""}};
  keys.emplace_back(w.meta_pk, "");
  for (std::size_t p = 0; p < kLogPartitions; ++p) keys.emplace_back(chunk_pk(w, p), "");
  std::vector<json::object> deletes;
  Status s;
  for (std::size_t i = 0; s.is_ok() && i < keys.size() && deletes.size() < budget; ++i)
    s = first_keys(keys[i].first, keys[i].second, budget - deletes.size(), &deletes);
  if (s.is_ok()) s = batch_write(deletes);
  *deleted = s.is_ok() ? deletes.size() : 0;
  return s;
}

Status DynamoDbStore::first_keys(const std::string& pk, const std::string& prefix, std::size_t limit,
                                 std::vector<json::object>* deletes) {
  json::object request{{"TableName", table()},
                       {"ConsistentRead", true},
                       {"KeyConditionExpression", "#pk = :p"},
                       {"ProjectionExpression", "#pk, #sk"},
                       {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
                       {"ExpressionAttributeValues", {{":p", attr_s(pk)}}}};
  with_sk_prefix(prefix, &request);
  for (std::size_t found = 0; found < limit;) {
    request["Limit"] = static_cast<int64_t>(limit - found);
    json::object reply;
    Status s = client_.call("Query", request, &reply);
    if (!s.is_ok()) return s;
    if (json::value* items = reply.if_contains("Items"); items && items->is_array())
      for (json::value& item : items->as_array()) {
        std::string sk;
        if (item.is_object() && get_s(item.as_object(), "SK", &sk) && found < limit) {
          deletes->push_back(delete_request(key_of(pk, sk)));
          ++found;
        }
      }
    json::value* last = reply.if_contains("LastEvaluatedKey");
    if (!last || !last->is_object()) break;
    request["ExclusiveStartKey"] = std::move(*last);
  }
  return Status::ok();
}

Status DynamoDbStore::forget_writer(const std::string& name) {
  json::object reply;
  Status s = client_.call("DeleteItem", {{"TableName", table()}, {"Key", key_of(kWritersPk, name)}}, &reply);
  if (!s.is_ok()) return s;
  s = client_.call("DeleteItem",
                   {{"TableName", table()},
                    {"Key", key_of(keys_of_writer(name).log_pk, kMarkerSk)},
                    {"ConditionExpression", "attribute_exists(#gc)"},
                    {"ExpressionAttributeNames", {{"#gc", "gc"}}}},
                   &reply);
  return s.is_conflict() ? Status::ok() : s;  // removed already, by another collector
}

Status DynamoDbStore::do_scan(const std::function<bool(const ItemRecord&)>& fn) {
  std::vector<std::pair<std::string, std::string>> keys;
  Status s = scan_keys(/*items_only=*/true, &keys);
  if (!s.is_ok()) return s;
  std::vector<std::string> pks;
  for (auto& [pk, sk] : keys)
    if (sk == kItemSk) pks.push_back(std::move(pk));
  bool stopped = false;
  return read_items(std::move(pks), fn, &stopped);
}

Status DynamoDbStore::read_items(std::vector<std::string> pks, const std::function<bool(const ItemRecord&)>& fn,
                                 bool* stopped) {
  Status s;
  std::sort(pks.begin(), pks.end());  // std::string compares as unsigned bytes
  const std::size_t window = kBatchGet * static_cast<std::size_t>(std::max(1, options().parallel_requests));
  for (std::size_t at = 0; at < pks.size(); at += window) {
    const std::size_t end = std::min(pks.size(), at + window);
    std::vector<json::object> batch;
    for (std::size_t i = at; i < end; ++i) batch.push_back(key_of(pks[i], kItemSk));
    std::map<std::string, ItemRecord> found;
    if (!(s = get_items(batch, &found)).is_ok()) return s;
    for (std::size_t i = at; i < end; ++i) {
      auto it = found.find(pks[i]);
      if (it != found.end() && !fn(it->second)) {  // absent: deleted meanwhile
        *stopped = true;
        return Status::ok();
      }
    }
  }
  return Status::ok();
}

Status DynamoDbStore::do_scan_dedup(const std::function<bool(const DedupRecord&)>& fn) {
  std::vector<std::string> writers{self_.name};
  for (const WriterKeys& part : parts_) writers.push_back(part.name);
  Status s = options().dedup_of_all_writers ? (writers.clear(), list_writers(&writers)) : Status::ok();
  bool stop = false;
  for (std::size_t i = 0; s.is_ok() && !stop && i < writers.size(); ++i)
    s = scan_writer_dedup(keys_of_writer(writers[i]), fn, &stop);
  // And the same writers' records in the partitions' index of a table indexed by partition.
  std::vector<std::string> prefixes;
  if (options().dedup_of_all_writers)
    prefixes.emplace_back(kDedupEntryPrefix);
  else
    for (const std::string& w : writers) prefixes.push_back(dedup_entry_prefix(keys_of_writer(w)));
  const int32_t count = partition_count_;
  for (int32_t p = 0; s.is_ok() && !stop && p < count; ++p)
    for (std::size_t i = 0; s.is_ok() && !stop && i < prefixes.size(); ++i)
      s = query_dedup(partition_index_pk(count, p), prefixes[i], fn, &stop);
  return s;
}

Status DynamoDbStore::scan_writer_dedup(const WriterKeys& w, const std::function<bool(const DedupRecord&)>& fn,
                                        bool* stopped) {
  return query_dedup(w.dedup_pk, "", fn, stopped);
}

Status DynamoDbStore::query_dedup(const std::string& pk, const std::string& prefix,
                                  const std::function<bool(const DedupRecord&)>& fn, bool* stopped,
                                  std::vector<std::string>* sks) {
  DedupRecord record;
  std::string current;  // hex key of the record being assembled
  int64_t expected = 0, seen = 0;
  bool& stop = *stopped;
  auto flush = [&]() -> Status {
    if (current.empty()) return Status::ok();
    if (seen != expected)
      return Status::corruption("dedup record " + current + " has " + std::to_string(seen) + " of its " +
                                std::to_string(expected) + " chunks");
    stop = !fn(record);
    current.clear();
    return Status::ok();
  };
  json::object request{{"KeyConditionExpression", "#pk = :p"},
                       {"ExpressionAttributeNames", {{"#pk", "PK"}}},
                       {"ExpressionAttributeValues", {{":p", attr_s(pk)}}}};
  with_sk_prefix(prefix, &request);
  Status s = query(std::move(request), [&](json::object& item) {
    if (stop) return Status::ok();
    std::string sk, key, part;
    int64_t n = 0;
    const std::size_t hash = get_s(item, "SK", &sk) ? sk.rfind('#') : std::string::npos;
    if (hash == std::string::npos || hash < prefix.size() || !get_n(item, "n", &n) || !get_b(item, "data", &part))
      return Status::corruption("malformed dedup item '" + printable(sk) + "'");
    if (sks) sks->push_back(sk);
    const std::string head = sk.substr(0, hash);
    if (head != current) {
      Status f = flush();
      if (!f.is_ok() || stop) return f;
      const std::size_t key_at = std::max(prefix.size(), head.rfind('#') + 1);
      if (!unhex(std::string_view(head).substr(key_at), &key) || !parse_dedup_record_key(key, &record))
        return Status::corruption("malformed dedup item '" + printable(sk) + "'");
      record.data.clear();
      current = head;
      expected = n;
      seen = 0;
    }
    record.data += part;
    ++seen;
    return Status::ok();
  });
  if (!s.is_ok() || stop) return s;
  return flush();
}

std::string DynamoDbStore::dedup_entry_prefix(const WriterKeys& w) {
  return std::string(kDedupEntryPrefix) + hex(w.name) + "#";
}

json::object DynamoDbStore::index_entry(std::string_view customer_id, int32_t count) {
  return key_of(partition_index_pk(count, partition_of_customer(customer_id, count)), customer_entry_sk(customer_id));
}

void DynamoDbStore::index_new_customers(const std::vector<ConditionalPut>& puts, int32_t count,
                                        std::vector<json::object>* out) {
  for (const ConditionalPut& put : puts) {
    const std::string_view id = customer_id_of_pk(put.record.pk);
    if (put.expected_version == 0 && !id.empty()) out->push_back(put_request(index_entry(id, count)));
  }
}

Status DynamoDbStore::dedup_items(const WriterKeys& w, const DedupRecord& r, int32_t count,
                                  std::vector<json::object>* out) {
  if (count == 0) {
    append_dedup_chunks(w.dedup_pk, hex(dedup_record_key(r)), r.data, out);
    return Status::ok();
  }
  std::map<int32_t, DedupRecord> by_partition;
  Status s = split_dedup_record(
      r, [count](std::string_view id) { return partition_of_customer(id, count); }, &by_partition);
  if (!s.is_ok()) return s;
  for (const auto& [p, part] : by_partition)
    append_dedup_chunks(partition_index_pk(count, p), dedup_entry_prefix(w) + hex(dedup_record_key(part)), part.data,
                        out);
  return Status::ok();
}

void DynamoDbStore::append_dedup_chunks(const std::string& pk, const std::string& key, std::string_view data,
                                        std::vector<json::object>* out) {
  const std::vector<std::string_view> parts = split(data, kChunkBytes);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    json::object item = key_of(pk, key + "#" + hex_number(i, 4));
    item["n"] = attr_n(static_cast<int64_t>(parts.size()));
    item["data"] = attr_b(parts[i]);
    out->push_back(put_request(std::move(item)));
  }
}

Status DynamoDbStore::read_partition_index(int32_t* count) {
  *count = 0;
  json::object item;
  std::string value;
  Status s = get_raw(kMetaPk, hex(kMetaPartitionIndex), &item);
  if (s.is_not_found()) return Status::ok();
  if (!s.is_ok()) return s;
  if (!get_b(item, "value", &value) || !parse_partition_count(value, count))
    return Status::corruption("DynamoDB table '" + table() + "': meta 'partition_index' is not a partition count");
  return Status::ok();
}

Status DynamoDbStore::load_partition_index() {
  int32_t count = 0;
  Status s = read_partition_index(&count);
  if (s.is_ok()) partition_count_ = count;
  return s;
}

Status DynamoDbStore::put_partition_index(int32_t count) {
  json::object item = key_of(kMetaPk, hex(kMetaPartitionIndex));
  item["value"] = attr_b(std::to_string(count));
  json::object reply;
  return client_.call("PutItem", {{"TableName", table()}, {"Item", std::move(item)}}, &reply);
}

Status DynamoDbStore::do_scan_partitions(const PartitionScope& scope,
                                         const std::function<bool(const ItemRecord&)>& item_fn,
                                         const std::function<bool(const DedupRecord&)>& dedup_fn) {
  int32_t indexed = 0;
  Status s = read_partition_index(&indexed);
  if (!s.is_ok()) return s;
  partition_count_ = scope.count;  // this writer's commits index under it from now on
  if (indexed != scope.count) return index_table(scope.count, indexed, item_fn, dedup_fn);
  std::vector<std::string> pks;
  for (std::size_t i = 0; s.is_ok() && i < scope.partitions.size(); ++i)
    s = indexed_customers(partition_index_pk(scope.count, scope.partitions[i]), &pks);
  bool stop = false;
  if (!s.is_ok() || !(s = read_items(std::move(pks), item_fn, &stop)).is_ok() || stop) return s;
  for (std::size_t i = 0; s.is_ok() && !stop && i < scope.partitions.size(); ++i)
    s = query_dedup(partition_index_pk(scope.count, scope.partitions[i]), std::string(kDedupEntryPrefix), dedup_fn,
                    &stop);
  return s.is_ok() && !stop ? move_into_index(scope.count, dedup_fn, &stop) : s;
}

Status DynamoDbStore::indexed_customers(const std::string& index_pk, std::vector<std::string>* pks) {
  return query({{"KeyConditionExpression", "#pk = :p AND begins_with(#sk, :c)"},
                {"ProjectionExpression", "#sk"},
                {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
                {"ExpressionAttributeValues", {{":p", attr_s(index_pk)}, {":c", attr_s(kCustomerEntryPrefix)}}}},
               [&](json::object& item) {
                 std::string sk;
                 if (get_s(item, "SK", &sk) && !customer_of_entry_sk(sk).empty())
                   pks->push_back(customer_pk(customer_of_entry_sk(sk)));
                 return Status::ok();
               });
}

Status DynamoDbStore::index_table(int32_t count, int32_t indexed_before,
                                  const std::function<bool(const ItemRecord&)>& item_fn,
                                  const std::function<bool(const DedupRecord&)>& dedup_fn) {
  std::vector<json::object> entries;
  bool stop = false;
  Status s = do_scan([&](const ItemRecord& r) {
    if (const std::string_view id = customer_id_of_pk(r.pk); !id.empty())
      entries.push_back(put_request(index_entry(id, count)));
    stop = !item_fn(r);
    return !stop;
  });
  if (!s.is_ok() || stop || !(s = batch_write(entries)).is_ok() ||
      !(s = move_into_index(count, dedup_fn, &stop)).is_ok())
    return s;
  std::vector<std::string> writers;
  if (indexed_before > 0 && !(s = list_writers(&writers)).is_ok()) return s;
  for (std::size_t i = 0; s.is_ok() && !stop && i < writers.size(); ++i) {
    const WriterKeys w = keys_of_writer(writers[i]);
    for (int32_t p = 0; s.is_ok() && !stop && p < indexed_before; ++p)
      s = move_dedup(w, partition_index_pk(indexed_before, p), dedup_entry_prefix(w), count, dedup_fn, &stop);
  }
  return s.is_ok() && !stop ? put_partition_index(count) : s;
}

Status DynamoDbStore::move_into_index(int32_t count, const std::function<bool(const DedupRecord&)>& fn, bool* stop) {
  std::vector<std::string> writers;
  Status s = list_writers(&writers);
  for (std::size_t i = 0; s.is_ok() && !*stop && i < writers.size(); ++i) {
    const WriterKeys w = keys_of_writer(writers[i]);
    s = move_dedup(w, w.dedup_pk, "", count, fn, stop);
  }
  return s;
}

Status DynamoDbStore::move_dedup(const WriterKeys& w, const std::string& pk, const std::string& prefix, int32_t count,
                                 const std::function<bool(const DedupRecord&)>& fn, bool* stop) {
  std::vector<json::object> copies;
  std::vector<std::string> sks;
  Status bad;
  Status s = query_dedup(
      pk, prefix,
      [&](const DedupRecord& r) {
        bad = dedup_items(w, r, count, &copies);
        return bad.is_ok() && fn(r);
      },
      stop, &sks);
  if (!s.is_ok() || !bad.is_ok()) return s.is_ok() ? bad : s;
  if (*stop || sks.empty() || !(s = batch_write(copies)).is_ok()) return s;
  std::vector<json::object> deletes;
  for (const std::string& sk : sks) deletes.push_back(delete_request(key_of(pk, sk)));
  return batch_write(deletes);
}

Status DynamoDbStore::do_clear() {
  std::lock_guard<std::mutex> lock(commit_mu_);
  std::vector<std::pair<std::string, std::string>> keys;
  Status s = scan_keys(/*items_only=*/false, &keys);
  if (!s.is_ok()) return s;
  std::vector<json::object> deletes;
  for (const auto& [pk, sk] : keys) deletes.push_back(delete_request(key_of(pk, sk)));
  if (!(s = batch_write(deletes)).is_ok() || !(s = put_layout()).is_ok()) return s;
  last_seq_ = 0;  // its marker went too: the next commit starts a new one
  lease_ = 0;
  claimed_.clear();  // and its claims
  // Still indexed: everything written from now on is (a replay keeps a group's index).
  if (partition_count_ > 0 && !(s = put_partition_index(partition_count_)).is_ok()) return s;
  return register_writer();
}

}  // namespace dynamodb_detail

namespace {

using namespace dynamodb_detail;

bool valid_endpoint(const std::string& url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

}  // namespace

std::string backfill_part_writer(const std::string& writer, int part, int parts) {
  return writer + std::string(kPartInfix) + std::to_string(part) + "-of-" + std::to_string(parts);
}

DynamoDbOptions resolve_dynamodb_options(DynamoDbOptions o) {
  o.region = resolve_aws_region(o.region);
  if (o.endpoint.empty()) o.endpoint = "https://dynamodb." + o.region + ".amazonaws.com";
  if (!o.metrics) o.metrics = std::make_shared<DynamoDbProbe>();
  return o;
}

namespace {

Status prepare(DynamoDbOptions* options, AwsCredentials* credentials) {
  *options = resolve_dynamodb_options(std::move(*options));
  if (!valid_endpoint(options->endpoint))
    return Status::invalid_argument("state.endpoint '" + options->endpoint + "': expected an http:// or https:// URL");
  if (options->table.size() < 3 || options->table.size() > 255 ||
      options->table.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
          std::string::npos)
    return Status::invalid_argument("state.table '" + options->table +
                                    "': a DynamoDB table name is 3 to 255 of a-z A-Z 0-9 _ . -");
  if (options->writer.empty() || !is_utf8(options->writer))
    return Status::invalid_argument("DynamoDB writer name must be non-empty UTF-8");
  return load_aws_credentials(credentials);
}

}  // namespace

Status open_dynamodb_store(DynamoDbOptions options, std::unique_ptr<StateStore>* out) {
  AwsCredentials credentials;
  Status s = prepare(&options, &credentials);
  if (!s.is_ok()) return s;
  auto store = std::make_unique<DynamoDbStore>(options, std::move(credentials));
  if (!(s = store->open()).is_ok()) return s;
  *out = std::move(store);
  return Status::ok();
}

Status create_dynamodb_table(DynamoDbOptions options, bool* existed) {
  *existed = false;
  AwsCredentials credentials;
  Status s = prepare(&options, &credentials);
  if (!s.is_ok()) return s;
  try {
    DynamoDbClient client(options, std::move(credentials));
    json::object attribute_defs_pk{{"AttributeName", "PK"}, {"AttributeType", "S"}};
    json::object attribute_defs_sk{{"AttributeName", "SK"}, {"AttributeType", "S"}};
    json::object reply;
    ApiError e;
    s = client.call("CreateTable",
                    {{"TableName", options.table},
                     {"AttributeDefinitions", json::array{attribute_defs_pk, attribute_defs_sk}},
                     {"KeySchema", json::array{json::object{{"AttributeName", "PK"}, {"KeyType", "HASH"}},
                                               json::object{{"AttributeName", "SK"}, {"KeyType", "RANGE"}}}},
                     {"BillingMode", "PAY_PER_REQUEST"}},
                    &reply, &e);
    if (e.type == "ResourceInUseException") {
      *existed = true;
      return Status::ok();
    }
    if (!s.is_ok()) return s;
    // A new table takes a moment to become ACTIVE; writes before that fail.
    for (int i = 0; i < 600; ++i) {
      if (!(s = client.call("DescribeTable", {{"TableName", options.table}}, &reply)).is_ok()) return s;
      const json::value* t = reply.if_contains("Table");
      const json::value* st = t && t->is_object() ? t->as_object().if_contains("TableStatus") : nullptr;
      if (st && st->is_string() && st->as_string() == "ACTIVE") return Status::ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Status::io_error("DynamoDB table '" + options.table + "' did not become ACTIVE within 60 s");
  } catch (const std::exception& ex) {
    return Status::io_error(std::string("DynamoDB CreateTable: ") + ex.what());
  }
}

}  // namespace streamscore
