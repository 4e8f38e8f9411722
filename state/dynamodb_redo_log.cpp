// The DynamoDB store's commits: the conflict check, the redo log and its commit point,
// the leases that fence a writer whose partitions were taken over, and recovery of a
// commit a writer left between its commit point and the end of its apply. Why it is
// all-or-nothing: docs/semantics.md, "State in DynamoDB".
#include "state/dynamodb_store_internal.hpp"

namespace streamscore::dynamodb_detail {

// The redo log of the previous format (markers without `format`): the checked write set,
// uncompressed, each put in full. Read to finish a commit an older streamscore left.
bool decode_writes(std::string_view bytes, WriteSet* w) {
  Decoder d(bytes);
  *w = WriteSet{};
  auto number = [&d](int64_t* v) {
    uint64_t u;
    if (!d.fixed64(&u)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  };
  auto text = [&d](std::string* v) {
    std::string_view s;
    if (!d.fixed64_string(&s)) return false;
    v->assign(s);
    return true;
  };
  uint64_t n = 0;
  if (!d.fixed64(&n)) return false;
  for (; n > 0; --n) {
    ConditionalPut p;
    if (!(text(&p.record.pk) && number(&p.expected_version) && number(&p.record.version) && text(&p.record.item_json) &&
          text(&p.record.internal)))
      return false;
    w->puts.push_back(std::move(p));
  }
  if (!d.fixed64(&n)) return false;
  for (; n > 0; --n) {
    MetaPut m;
    if (!(text(&m.key) && text(&m.value))) return false;
    w->meta.push_back(std::move(m));
  }
  if (!d.fixed64(&n)) return false;
  for (; n > 0; --n) {
    DedupRecord r;
    std::string key;
    if (!(text(&key) && parse_dedup_record_key(key, &r) && text(&r.data))) return false;
    w->dedup.push_back(std::move(r));
  }
  return number(&w->forget_dedup_before_day) && d.at_end();
}

std::vector<std::string_view> split(std::string_view bytes, std::size_t size) {
  std::vector<std::string_view> out;
  for (std::size_t at = 0; at < bytes.size(); at += size) out.push_back(bytes.substr(at, size));
  if (out.empty()) out.push_back(bytes);
  return out;
}

Status DynamoDbStore::validate(const WriteSet& w) {
  Status s = validate_puts(w.puts);
  if (!s.is_ok()) return s;
  for (std::size_t i = 0; i < w.puts.size(); ++i) {
    const ItemRecord& r = w.puts[i].record;
    if (!is_utf8(r.pk))
      return Status::invalid_argument("put " + std::to_string(i) + ": PK '" + printable(r.pk) +
                                      "' is not UTF-8 (DynamoDB keys are strings)");
    const std::size_t size = item_size_bound(r, self_.stamp.size());
    if (size > kItemLimit) {
      const std::string_view customer_id = customer_id_of_pk(r.pk);
      const std::string id(customer_id.empty() ? std::string_view(r.pk) : customer_id);
      return Status::invalid_argument("customer '" + printable(id) + "': its item needs up to " + std::to_string(size) +
                                      " bytes, over DynamoDB's 400 KB item limit");
    }
  }
  for (const MetaPut& m : w.meta)
    if (!(s = check_meta(m.key, m.value)).is_ok()) return s;
  return Status::ok();
}

Status DynamoDbStore::read_stored(const std::vector<ConditionalPut>& puts, std::map<std::string, ItemRecord>* stored) {
  for (const ConditionalPut& p : puts) (*stored)[p.record.pk].pk = p.record.pk;
  std::vector<json::object> keys;
  for (const auto& kv : *stored) keys.push_back(key_of(kv.first, kItemSk));
  return get_items(keys, stored);
}

Status DynamoDbStore::check(const WriteSet& writes, std::vector<std::size_t>* conflicts, WriteSet* checked,
                            std::vector<std::string>* bases) {
  std::map<std::string, ItemRecord> stored;
  Status s = read_stored(writes.puts, &stored);
  if (!s.is_ok()) return s;
  std::map<std::string, int64_t> versions;
  for (const auto& [pk, record] : stored) versions[pk] = record.version;
  std::map<std::string, std::size_t> index;  // pk -> position in checked->puts
  for (std::size_t i = 0; i < writes.puts.size(); ++i) {
    const ConditionalPut& p = writes.puts[i];
    int64_t& current = versions[p.record.pk];
    if (current != p.expected_version) {
      conflicts->push_back(i);
      continue;
    }
    current = p.record.version;
    auto [it, fresh] = index.emplace(p.record.pk, checked->puts.size());
    if (fresh) {
      checked->puts.push_back(p);
      bases->push_back(std::move(stored[p.record.pk].internal));
    } else {
      checked->puts[it->second].record = p.record;
    }
  }
  // One BatchWriteItem may not name a key twice: the last value of a meta key wins.
  std::map<std::string, std::size_t> meta_at;
  for (const MetaPut& m : writes.meta) {
    auto [it, fresh] = meta_at.emplace(m.key, checked->meta.size());
    if (fresh)
      checked->meta.push_back(m);
    else
      checked->meta[it->second].value = m.value;
  }
  checked->dedup = writes.dedup;
  checked->forget_dedup_before_day = writes.forget_dedup_before_day;
  checked->forget_partition_dedup_before_day = writes.forget_partition_dedup_before_day;
  return Status::ok();
}

Status DynamoDbStore::do_commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) {
  conflicts->clear();
  Status s = validate(writes);
  if (!s.is_ok()) return s;
  if (writes.puts.empty() && writes.meta.empty() && writes.dedup.empty() && writes.forget_dedup_before_day == kNoDay &&
      writes.forget_partition_dedup_before_day.empty())
    return Status::ok();
  // One item alone is atomic in DynamoDB: a conditional write, no log.
  if (writes.puts.size() == 1 && writes.meta.empty() && writes.dedup.empty() &&
      writes.forget_dedup_before_day == kNoDay && writes.forget_partition_dedup_before_day.empty())
    return put_alone(writes.puts[0], conflicts);
  WriteSet checked;
  std::vector<std::string> bases;
  if (options().bulk_load) {  // the shards of a rebuild flush disjoint customers in parallel
    if (!(s = check(writes, conflicts, &checked, &bases)).is_ok() || !conflicts->empty()) return s;
    return apply(self_, checked, 0, 0);
  }
  // One commit at a time: one log sequence per writer, and a commit checks against
  // what the previous one of this process applied.
  std::lock_guard<std::mutex> lock(commit_mu_);
  if (!(s = check(writes, conflicts, &checked, &bases)).is_ok() || !conflicts->empty()) return s;
  if ((s = commit_logged(checked, bases)).is_ok()) collect_garbage(checked.forget_dedup_before_day);
  return s;
}

Status DynamoDbStore::put_alone(const ConditionalPut& put, std::vector<std::size_t>* conflicts) {
  json::object reply;
  Status s = client_.call("UpdateItem", update_request(self_, put, 0), &reply);
  if (s.is_conflict()) {
    conflicts->push_back(0);
    return Status::ok();
  }
  return s;
}

json::object DynamoDbStore::update_request(const WriterKeys& w, const ConditionalPut& put, uint64_t seq) {
  const ItemRecord& r = put.record;
  json::object set{{"version", attr_n(r.version)}, {"data", attr_b(encode_item_data(r.item_json, r.internal))}};
  std::vector<std::string> absent{"item_json", "state"};  // the previous format's copies
  project_item(r.item_json, &set, &absent);
  json::object names{{"#v", "version"}};
  json::object values{{":e", attr_n(put.expected_version)}};
  std::string update = "SET ";
  int n = 0;
  for (auto& kv : set) {
    const std::string name = "#a" + std::to_string(n), value = ":a" + std::to_string(n);
    update += (n++ ? ", " : "") + name + " = " + value;
    names[name] = kv.key();
    values[value] = std::move(kv.value());
  }
  std::string condition = put.expected_version == 0 ? "(attribute_not_exists(PK) OR #v = :e)" : "#v = :e";
  if (seq > 0) {
    update += ", #w = :seq";
    condition += " AND (attribute_not_exists(#w) OR #w < :seq)";
    names["#w"] = w.stamp;
    values[":seq"] = attr_n(static_cast<int64_t>(seq));
  }
  for (std::size_t i = 0; i < absent.size(); ++i) {
    const std::string name = "#r" + std::to_string(i);
    update += (i ? ", " : " REMOVE ") + name;
    names[name] = absent[i];
  }
  return {{"TableName", table()},
          {"Key", key_of(r.pk, kItemSk)},
          {"UpdateExpression", update},
          {"ConditionExpression", condition},
          {"ExpressionAttributeNames", std::move(names)},
          {"ExpressionAttributeValues", std::move(values)}};
}

Status DynamoDbStore::next_lease(int64_t* lease) {
  json::object reply;
  Status s = client_.call("UpdateItem",
                          {{"TableName", table()},
                           {"Key", key_of(kOwnersPk, kLeaseCounterSk)},
                           {"UpdateExpression", "ADD #n :one"},
                           {"ExpressionAttributeNames", {{"#n", "n"}}},
                           {"ExpressionAttributeValues", {{":one", attr_n(1)}}},
                           {"ReturnValues", "UPDATED_NEW"}},
                          &reply);
  if (!s.is_ok()) return s;
  const json::value* attributes = reply.if_contains("Attributes");
  if (!attributes || !attributes->is_object() || !get_n(attributes->as_object(), "n", lease))
    return Status::corruption("DynamoDB table '" + table() + "': the lease counter is not a number");
  return Status::ok();
}

Status DynamoDbStore::set_own_lease(int64_t lease) {
  json::object reply;
  return client_.call("UpdateItem",
                      {{"TableName", table()},
                       {"Key", key_of(self_.log_pk, kMarkerSk)},
                       {"UpdateExpression", "SET #l = :l"},
                       {"ExpressionAttributeNames", {{"#l", "lease"}}},
                       {"ExpressionAttributeValues", {{":l", attr_n(lease)}}}},
                      &reply);
}

Status DynamoDbStore::claim(const std::string& partition, int64_t lease, bool kept, std::string* holder,
                            int64_t* held_under) {
  json::object reply;
  Status s =
      client_.call("UpdateItem",
                   {{"TableName", table()},
                    {"Key", key_of(kOwnersPk, partition)},
                    {"UpdateExpression", "SET #w = :w, #l = :l"},
                    {"ConditionExpression", kept ? "#w = :w AND #l < :l" : "attribute_not_exists(#l) OR #l < :l"},
                    {"ExpressionAttributeNames", {{"#w", "writer"}, {"#l", "lease"}}},
                    {"ExpressionAttributeValues", {{":w", attr_s(self_.name)}, {":l", attr_n(lease)}}},
                    {"ReturnValues", "ALL_OLD"}},
                   &reply);
  if (s.is_conflict()) {
    metrics().fenced.fetch_add(1, std::memory_order_relaxed);
    return Status::fenced("writer '" + self_.name + "' cannot take " + partition +
                          (kept ? ": another writer took it over while this one held it"
                                : ": another writer took it under a newer lease"));
  }
  if (!s.is_ok()) return s;
  const json::value* old = reply.if_contains("Attributes");
  if (old && old->is_object()) {
    get_s(old->as_object(), "writer", holder);
    get_n(old->as_object(), "lease", held_under);
  }
  return Status::ok();
}

Status DynamoDbStore::fence(const std::string& holder, int64_t held_under) {
  json::object reply;
  Status s = client_.call("UpdateItem",
                          {{"TableName", table()},
                           {"Key", key_of(keys_of_writer(holder).log_pk, kMarkerSk)},
                           {"UpdateExpression", "SET #l = :fenced"},
                           {"ConditionExpression", "#l = :held"},
                           {"ExpressionAttributeNames", {{"#l", "lease"}}},
                           {"ExpressionAttributeValues", {{":fenced", attr_n(0)}, {":held", attr_n(held_under)}}}},
                          &reply);
  return s.is_conflict() ? Status::ok() : s;
}

Status DynamoDbStore::fence_self(int64_t lease, const Status& why) {
  const Status s = fence(self_.name, lease);
  return s.is_ok() ? why : s;
}

Status DynamoDbStore::marker_refused() {
  json::object marker;
  int64_t lease = 0;
  Status s = get_raw(self_.log_pk, kMarkerSk, &marker);
  if (!s.is_ok() && !s.is_not_found()) return s;
  if (s.is_not_found() || is_true(marker, "gc")) return collected();
  get_n(marker, "lease", &lease);
  if (s.is_ok() && lease != lease_) {
    metrics().fenced.fetch_add(1, std::memory_order_relaxed);
    return Status::fenced("writer '" + self_.name +
                          "' was fenced: another writer took over its partitions; "
                          "the checkpoint was not written");
  }
  return Status::io_error("DynamoDB table '" + table() + "': another process commits as writer '" + options().writer +
                          "' (its commit marker moved); one writer name per process");
}

Status DynamoDbStore::collected() {
  last_seq_ = 0;
  const std::string what = "writer '" + self_.name + "' was removed from table '" + table() +
                           "' as gone (no commit for state.gc_idle, its dedup ids past the horizon); "
                           "the checkpoint was not written";
  if (lease_ == 0) return Status::io_error(what + "; its clock and source position went with it");
  metrics().fenced.fetch_add(1, std::memory_order_relaxed);
  return Status::fenced(what);
}

uint64_t DynamoDbStore::next_sequence() {
  // At least the wall clock in microseconds: a marker lost by hand cannot make a new
  // commit reuse a sequence that items were already stamped with.
  const uint64_t now = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  return std::max(last_seq_ + 1, now);
}

std::string DynamoDbStore::chunk_pk(const WriterKeys& w, std::size_t i) {
  return w.log_pk + "#" + hex_number(i % kLogPartitions, 1);
}

std::string DynamoDbStore::chunk_sk(uint64_t seq, std::size_t i) const {
  return "chunk#" + hex_number(seq, 16) + "#" + hex_number(i, 6);
}

Status DynamoDbStore::stopped(CommitStage stage) {
  return Status::io_error(std::string("stopped by the test hook after ") +
                          (stage == CommitStage::log_written ? "writing the log"
                           : stage == CommitStage::committed ? "the commit point"
                                                             : "applying"));
}

Status DynamoDbStore::commit_logged(const WriteSet& checked, const std::vector<std::string>& bases) {
  const uint64_t seq = next_sequence();
  const std::string payload = encode_redo_log(checked, bases);
  const bool inline_payload = payload.size() <= kChunkBytes;
  const std::vector<std::string_view> chunks = split(payload, kChunkBytes);
  // (0) a new marker: listed among the writers first (a collector removed the entry of a
  // member that rejoins), or a takeover would never finish a commit of it that stopped
  Status s;
  if (last_seq_ == 0 && !(s = register_writer()).is_ok()) return s;
  // (1) the log, unless the marker can carry it
  if (!inline_payload) {
    std::vector<json::object> puts;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      json::object item = key_of(chunk_pk(self_, i), chunk_sk(seq, i));
      item["data"] = attr_b(chunks[i]);
      puts.push_back(put_request(std::move(item)));
    }
    if (!(s = batch_write(puts)).is_ok()) return s;
  }
  if (options().test_stop_after == CommitStage::log_written) return stopped(CommitStage::log_written);
  // (2) the commit point: the marker, only over the last marker this process knows of,
  // and only while it still carries this writer's lease (not fenced)
  json::object names{{"#s", "seq"},   {"#p", "pending"},       {"#c", "chunks"}, {"#i", "inline"},
                     {"#l", "lease"}, {"#cl", "commit_lease"}, {"#gc", "gc"},    {"#f", "format"}};
  json::object values{{":seq", attr_n(static_cast<int64_t>(seq))},
                      {":f", attr_n(kLogFormat)},
                      {":yes", {{"BOOL", true}}},
                      {":c", attr_n(inline_payload ? 0 : static_cast<int64_t>(chunks.size()))},
                      {":cl", attr_n(lease_)},
                      {":prev", attr_n(static_cast<int64_t>(last_seq_))},
                      {":no", {{"BOOL", false}}}};
  std::string update = "SET #s = :seq, #p = :yes, #c = :c, #cl = :cl, #f = :f";
  if (inline_payload) {
    update += ", #i = :i";
    values[":i"] = attr_b(payload);
  } else {
    update += " REMOVE #i";
  }
  // A marker that vanished under a writer that has committed or holds a lease was
  // removed by a collector (it was gone): its commit must not land on a fresh marker.
  std::string condition =
      last_seq_ == 0 ? "(attribute_not_exists(#s) OR (#s = :prev AND #p = :no))" : "#s = :prev AND #p = :no";
  condition += lease_ == 0 ? " AND (attribute_not_exists(#l) OR #l = :cl)" : " AND #l = :cl";
  condition += " AND attribute_not_exists(#gc)";  // not marked gone by a collector
  json::object reply;
  s = client_.call("UpdateItem",
                   {{"TableName", table()},
                    {"Key", key_of(self_.log_pk, kMarkerSk)},
                    {"UpdateExpression", update},
                    {"ConditionExpression", condition},
                    {"ExpressionAttributeNames", std::move(names)},
                    {"ExpressionAttributeValues", std::move(values)}},
                   &reply);
  if (s.is_conflict()) return marker_refused();
  if (!s.is_ok()) return s;
  last_seq_ = seq;
  if (options().test_stop_after == CommitStage::committed) return stopped(CommitStage::committed);
  // (3) apply, (4) mark applied, drop the log
  if (!(s = apply(self_, checked, seq, lease_)).is_ok()) return s;
  if (options().test_stop_after == CommitStage::applied) return stopped(CommitStage::applied);
  return finish(self_, seq, inline_payload ? 0 : chunks.size());
}

Status DynamoDbStore::finish(const WriterKeys& w, uint64_t seq, std::size_t chunks) {
  json::object reply;
  Status s = client_.call(
      "UpdateItem",
      {{"TableName", table()},
       {"Key", key_of(w.log_pk, kMarkerSk)},
       {"UpdateExpression", "SET #p = :no REMOVE #i"},
       {"ConditionExpression", "#s = :seq"},
       {"ExpressionAttributeNames", {{"#p", "pending"}, {"#i", "inline"}, {"#s", "seq"}}},
       {"ExpressionAttributeValues", {{":no", {{"BOOL", false}}}, {":seq", attr_n(static_cast<int64_t>(seq))}}}},
      &reply);
  if (s.is_conflict() && w.name != self_.name) return Status::ok();
  if (s.is_conflict())
    return Status::io_error("DynamoDB table '" + table() + "': the commit marker of writer '" + options().writer +
                            "' moved while applying; one writer name per process");
  if (!s.is_ok()) return s;
  std::vector<json::object> deletes;
  for (std::size_t i = 0; i < chunks; ++i) deletes.push_back(delete_request(key_of(chunk_pk(w, i), chunk_sk(seq, i))));
  return batch_write(deletes);
}

Status DynamoDbStore::apply(const WriterKeys& writer, const WriteSet& w, uint64_t seq, int64_t lease) {
  Status s = forget_dedup(writer, w.forget_dedup_before_day);
  if (!s.is_ok() || !(s = forget_partition_dedup(w.forget_partition_dedup_before_day)).is_ok()) return s;
  std::vector<json::object> dedup;
  for (const DedupRecord& r : w.dedup)
    if (!(s = dedup_items(writer, r, partition_count_, &dedup)).is_ok()) return s;
  if (partition_count_ > 0) index_new_customers(w.puts, partition_count_, &dedup);
  if (!(s = batch_write(dedup)).is_ok()) return s;
  s = parallel_for(w.puts.size(), options().parallel_requests,
                   [&](std::size_t i) { return apply_put(writer, w.puts[i], seq); });
  if (!s.is_ok()) return s;
  std::vector<MetaPut> own_meta, table_meta;
  for (const MetaPut& m : w.meta) (is_table_meta(m.key) ? table_meta : own_meta).push_back(m);
  if (!(s = put_meta_if_newer(writer, table_meta, seq, lease)).is_ok()) return s;
  if (writer.name != self_.name) return put_meta_if_newer(writer, own_meta, seq, 0);
  std::vector<json::object> meta;
  for (const MetaPut& m : own_meta) meta.push_back(put_request(meta_item(writer, m.key, m.value, seq)));
  return batch_write(meta);
}

Status DynamoDbStore::put_meta_if_newer(const WriterKeys& w, const std::vector<MetaPut>& meta, uint64_t seq,
                                        int64_t lease) {
  return parallel_for(meta.size(), options().parallel_requests, [&](std::size_t i) {
    const MetaPut& m = meta[i];
    json::object item = meta_item(w, m.key, m.value, seq);
    if (lease > 0) item["lease"] = attr_n(lease);
    json::object reply;
    Status s = client_.call(
        "PutItem",
        {{"TableName", table()},
         {"Item", std::move(item)},
         {"ConditionExpression",
          "attribute_not_exists(#l) OR #l < :l OR (#l = :l AND (attribute_not_exists(#s) OR #s <= :seq))"},
         {"ExpressionAttributeNames", {{"#s", "seq"}, {"#l", "lease"}}},
         {"ExpressionAttributeValues", {{":seq", attr_n(static_cast<int64_t>(seq))}, {":l", attr_n(lease)}}}},
        &reply);
    return s.is_conflict() ? Status::ok() : s;
  });
}

Status DynamoDbStore::apply_put(const WriterKeys& w, ConditionalPut put, uint64_t seq) {
  for (int attempt = 0; attempt < kMaxRebases; ++attempt) {
    json::object reply;
    Status s = client_.call("UpdateItem", update_request(w, put, seq), &reply);
    if (!s.is_conflict()) return s;
    json::object item;
    s = get_raw(put.record.pk, kItemSk, &item);
    if (!s.is_ok() && !s.is_not_found()) return s;
    int64_t stored = 0, stamp = 0;
    if (s.is_ok() && !get_n(item, "version", &stored))
      return Status::corruption("DynamoDB item '" + printable(put.record.pk) + "' has no numeric version");
    if (s.is_ok() && seq > 0 && get_n(item, w.stamp, &stamp) && static_cast<uint64_t>(stamp) >= seq)
      return Status::ok();
    int64_t delta = 0;
    if (!rebase_put(&put, stored, &delta).is_ok()) {
      // Not an engine item (its JSON does not end with its version): move the version only.
      put.expected_version = stored;
      put.record.version += delta;
    }
    metrics().rebased.fetch_add(1, std::memory_order_relaxed);
  }
  return Status::io_error("DynamoDB: item '" + printable(put.record.pk) + "' kept moving while applying commit " +
                          std::to_string(seq));
}

Status DynamoDbStore::forget_dedup(const WriterKeys& w, int64_t before_day) {
  if (before_day == kNoDay) return Status::ok();
  std::vector<json::object> deletes;
  Status s = below_day(w.dedup_pk, "", before_day, &deletes);
  return s.is_ok() ? batch_write(deletes) : s;
}

Status DynamoDbStore::forget_partition_dedup(const std::map<int32_t, int64_t>& before_day) {
  const int32_t count = partition_count_;
  std::vector<json::object> deletes;
  Status s;
  for (auto it = before_day.begin(); s.is_ok() && it != before_day.end(); ++it) {
    if (it->first < 0 || it->first >= count) continue;  // not a partition of the indexed topic
    const std::string pk = partition_index_pk(count, it->first);
    std::string prefix;
    bool found = false;
    // Writer by writer (records sort by writer, then by day): one read to find the next.
    for (std::string from(kDedupEntryPrefix); s.is_ok(); from = next_writer_after(prefix)) {
      if (!(s = first_dedup_writer(pk, from, &prefix, &found)).is_ok() || !found) break;
      s = below_day(pk, prefix, it->second, &deletes);
    }
  }
  return s.is_ok() ? batch_write(deletes) : s;
}

Status DynamoDbStore::below_day(const std::string& pk, const std::string& prefix, int64_t before_day,
                                std::vector<json::object>* deletes) {
  DedupRecord bound;
  bound.day = before_day;
  json::object values{{":p", attr_s(pk)}, {":hi", attr_s(prefix + hex(dedup_record_key(bound)))}};
  if (!prefix.empty()) values[":lo"] = attr_s(prefix);  // a key value may not be empty
  return query(
      {{"KeyConditionExpression", prefix.empty() ? "#pk = :p AND #sk < :hi" : "#pk = :p AND #sk BETWEEN :lo AND :hi"},
       {"ProjectionExpression", "#pk, #sk"},
       {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
       {"ExpressionAttributeValues", std::move(values)}},
      [&](json::object& item) {
        std::string sk;
        if (get_s(item, "SK", &sk)) deletes->push_back(delete_request(key_of(pk, sk)));
        return Status::ok();
      });
}

Status DynamoDbStore::first_dedup_writer(const std::string& pk, const std::string& from, std::string* prefix,
                                         bool* found) {
  const std::string end = next_writer_after(std::string(kDedupEntryPrefix));  // past every "D#..."
  json::object reply;
  Status s =
      client_.call("Query",
                   {{"TableName", table()},
                    {"ConsistentRead", true},
                    {"KeyConditionExpression", "#pk = :p AND #sk BETWEEN :from AND :end"},
                    {"ProjectionExpression", "#sk"},
                    {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
                    {"ExpressionAttributeValues", {{":p", attr_s(pk)}, {":from", attr_s(from)}, {":end", attr_s(end)}}},
                    {"Limit", 1}},
                   &reply);
  *found = false;
  const json::value* items = s.is_ok() ? reply.if_contains("Items") : nullptr;
  if (!items || !items->is_array() || items->as_array().empty() || !items->as_array()[0].is_object()) return s;
  std::string sk;
  const std::size_t end_of_writer =
      get_s(items->as_array()[0].as_object(), "SK", &sk) ? sk.find('#', kDedupEntryPrefix.size()) : std::string::npos;
  if (end_of_writer == std::string::npos) return Status::corruption("malformed dedup item '" + printable(sk) + "'");
  *prefix = sk.substr(0, end_of_writer + 1);
  *found = true;
  return Status::ok();
}

std::string DynamoDbStore::next_writer_after(const std::string& prefix) {
  return prefix.substr(0, prefix.size() - 1) + static_cast<char>(prefix.back() + 1);
}

Status DynamoDbStore::recover_writer(const WriterKeys& w, bool own) {
  json::object marker;
  Status s = get_raw(w.log_pk, kMarkerSk, &marker);
  if (s.is_not_found()) return own ? sweep_log() : Status::ok();
  if (!s.is_ok()) return s;
  if (own && is_true(marker, "gc"))
    return Status::io_error("writer '" + w.name + "' is being removed from table '" + table() +
                            "' as gone by another writer; start it again once that is done, or under another "
                            "state.writer");
  if (own) get_n(marker, "lease", &lease_);  // a restart holds what its predecessor held, or nothing once fenced
  if (!attr(marker, "seq", "N")) return own ? sweep_log() : Status::ok();  // a lease, no commit yet
  int64_t seq = 0, chunks = 0;
  if (!get_n(marker, "seq", &seq) || !get_n(marker, "chunks", &chunks))
    return Status::corruption("commit marker of writer '" + w.name + "' is malformed");
  if (own) last_seq_ = static_cast<uint64_t>(seq);
  int64_t commit_lease = 0;
  get_n(marker, "commit_lease", &commit_lease);
  const json::value* pending = attr(marker, "pending", "BOOL");
  if (pending && pending->is_bool() && pending->as_bool()) {
    std::string payload;
    s = load_payload(w, marker, static_cast<uint64_t>(seq), chunks, &payload);
    // Another process, alive, may have finished the commit and dropped its chunks meanwhile:
    // its owner, or for this writer's own log a takeover by another writer.
    if (s.code() == Status::Code::corruption && marker_moved(w, static_cast<uint64_t>(seq)))
      return own ? recover_writer(w, own) : Status::ok();
    if (!s.is_ok()) return s;
    WriteSet ws;
    s = writes_of_log(w, marker, payload, static_cast<uint64_t>(seq), &ws);
    // The same: it was finished and its items written further meanwhile.
    if (s.code() == Status::Code::corruption && marker_moved(w, static_cast<uint64_t>(seq)))
      return own ? recover_writer(w, own) : Status::ok();
    if (!s.is_ok()) return s;
    if (!(s = apply(w, ws, static_cast<uint64_t>(seq), commit_lease)).is_ok() ||
        !(s = finish(w, static_cast<uint64_t>(seq), static_cast<std::size_t>(chunks))).is_ok())
      return s;
    metrics().recovered.fetch_add(1, std::memory_order_relaxed);
  }
  return own ? sweep_log() : Status::ok();
}

Status DynamoDbStore::writes_of_log(const WriterKeys& w, const json::object& marker, const std::string& payload,
                                    uint64_t seq, WriteSet* writes) {
  const std::string which = "redo log " + std::to_string(seq) + " of writer '" + w.name + "'";
  int64_t format = 1;
  get_n(marker, "format", &format);
  if (format == 1)
    return decode_writes(payload, writes) ? Status::ok() : Status::corruption(which + " does not decode");
  if (format != kLogFormat)
    return Status::corruption(which + " has format " + std::to_string(format) +
                              ", written by a newer streamscore: finish it with that version");
  RedoLog log;
  Status s = decode_redo_log(payload, &log);
  if (!s.is_ok()) return Status::corruption(which + ": " + s.message());
  if (!(s = rebuild_puts(w, seq, &log)).is_ok()) return Status::corruption(which + ": " + s.message());
  *writes = std::move(log.writes);
  return Status::ok();
}

Status DynamoDbStore::rebuild_puts(const WriterKeys& w, uint64_t seq, RedoLog* log) {
  std::vector<ConditionalPut>& puts = log->writes.puts;
  std::vector<char> applied(puts.size(), 0);  // not vector<bool>: written from several threads
  Status s = parallel_for(puts.size(), options().parallel_requests, [&](std::size_t i) {
    json::object item;
    ItemRecord stored;
    int64_t stamp = 0;
    Status r = get_raw(puts[i].record.pk, kItemSk, &item);
    if (r.is_ok() && get_n(item, w.stamp, &stamp) && static_cast<uint64_t>(stamp) >= seq) {
      applied[i] = 1;
      return Status::ok();
    }
    if (r.is_ok()) r = decode_item(item, &stored);
    if (!r.is_ok() && !r.is_not_found()) return r;
    r = rebuild_internal(log->deltas[i], stored.internal, &puts[i].record.internal);
    if (r.is_conflict())
      return Status::corruption("item '" + printable(puts[i].record.pk) +
                                "' was rewritten with other internal data by another writer before this commit "
                                "was applied; its put cannot be rebuilt (rebuild the table with `streamscore replay`)");
    return r;
  });
  if (!s.is_ok()) return s;
  std::vector<ConditionalPut> left;
  for (std::size_t i = 0; i < puts.size(); ++i)
    if (!applied[i]) left.push_back(std::move(puts[i]));
  puts = std::move(left);
  return Status::ok();
}

bool DynamoDbStore::marker_moved(const WriterKeys& w, uint64_t seq) {
  json::object marker;
  int64_t now = 0;
  if (!get_raw(w.log_pk, kMarkerSk, &marker).is_ok() || !get_n(marker, "seq", &now)) return false;
  const json::value* pending = attr(marker, "pending", "BOOL");
  return static_cast<uint64_t>(now) != seq || !(pending && pending->is_bool() && pending->as_bool());
}

Status DynamoDbStore::check_layout() {
  json::object item;
  Status s = get_raw(kMetaPk, hex(kLayoutKey), &item);
  if (!s.is_not_found()) return s;
  s = get_raw(kMetaPk, hex("format"), &item);
  if (s.is_ok())
    return Status::corruption("DynamoDB table '" + table() +
                              "' was written by an older streamscore (one meta and "
                              "one dedup key for all writers); rebuild it with `streamscore replay`");
  return s.is_not_found() ? put_layout() : s;
}

Status DynamoDbStore::put_layout() {
  json::object item = key_of(kMetaPk, hex(kLayoutKey));
  item["value"] = attr_b(kLayout);
  json::object reply;
  return client_.call("PutItem", {{"TableName", table()}, {"Item", std::move(item)}}, &reply);
}

Status DynamoDbStore::register_writer() {
  json::object reply;
  return client_.call("PutItem", {{"TableName", table()}, {"Item", key_of(kWritersPk, self_.name)}}, &reply);
}

Status DynamoDbStore::find_backfill_parts() {
  std::vector<std::string> writers;
  Status s = list_writers(&writers);
  const std::string prefix = self_.name + std::string(kPartInfix);
  for (const std::string& name : writers)
    if (name.compare(0, prefix.size(), prefix) == 0) parts_.push_back(keys_of_writer(name));
  return s;
}

Status DynamoDbStore::list_writers(std::vector<std::string>* writers) {
  return query({{"KeyConditionExpression", "#pk = :p"},
                {"ProjectionExpression", "#sk"},
                {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
                {"ExpressionAttributeValues", {{":p", attr_s(kWritersPk)}}}},
               [&](json::object& item) {
                 std::string name;
                 if (get_s(item, "SK", &name)) writers->push_back(std::move(name));
                 return Status::ok();
               });
}

Status DynamoDbStore::load_payload(const WriterKeys& w, const json::object& marker, uint64_t seq, int64_t chunks,
                                   std::string* payload) {
  if (chunks == 0) {
    return get_b(marker, "inline", payload)
               ? Status::ok()
               : Status::corruption("commit marker " + std::to_string(seq) + " has no inline payload");
  }
  std::vector<json::object> keys;
  for (int64_t i = 0; i < chunks; ++i) keys.push_back(key_of(chunk_pk(w, i), chunk_sk(seq, i)));
  std::vector<std::string> parts(static_cast<std::size_t>(chunks));
  std::vector<bool> found(parts.size(), false);
  std::mutex mu;
  Status s = batch_get(keys, nullptr, [&](json::object& item) {
    std::string sk, part;
    const bool ok = get_s(item, "SK", &sk) && get_b(item, "data", &part);
    uint64_t i = 0;
    const std::size_t hash = sk.rfind('#');
    if (!ok || hash == std::string::npos ||
        std::from_chars(sk.data() + hash + 1, sk.data() + sk.size(), i, 16).ec != std::errc() || i >= parts.size())
      return;  // counted as missing below
    std::lock_guard<std::mutex> lock(mu);
    parts[i] = std::move(part);
    found[i] = true;
  });
  if (!s.is_ok()) return s;
  const auto have = std::count(found.begin(), found.end(), true);
  if (have != chunks)
    return Status::corruption("redo log " + std::to_string(seq) + " of writer '" + w.name + "' has " +
                              std::to_string(have) + " of its " + std::to_string(chunks) + " chunks");
  for (const std::string& part : parts) payload->append(part);
  return Status::ok();
}

Status DynamoDbStore::sweep_log() {
  std::vector<json::object> deletes;
  for (std::size_t p = 0; p < kLogPartitions; ++p) {
    const std::string pk = chunk_pk(self_, p);
    Status s = query({{"KeyConditionExpression", "#pk = :p AND #sk BETWEEN :lo AND :hi"},
                      {"ProjectionExpression", "#pk, #sk"},
                      {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
                      {"ExpressionAttributeValues",
                       {{":p", attr_s(pk)},
                        {":lo", attr_s("chunk#")},
                        {":hi", attr_s("chunk#" + hex_number(last_seq_, 16) + "#~")}}}},
                     [&](json::object& item) {
                       std::string sk;
                       if (get_s(item, "SK", &sk)) deletes.push_back(delete_request(key_of(pk, sk)));
                       return Status::ok();
                     });
    if (!s.is_ok()) return s;
  }
  return batch_write(deletes);
}

}  // namespace streamscore::dynamodb_detail
