#include "model/validate.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <utility>
#include <vector>

namespace streamscore {

namespace json = boost::json;

namespace {

Status defect(const std::string& what) {
  return Status::corruption(what);
}

bool as_integer(const json::value& v, int64_t* out) {
  if (v.is_int64()) {
    *out = v.as_int64();
    return true;
  }
  if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    *out = static_cast<int64_t>(v.as_uint64());
    return true;
  }
  return false;
}

bool as_number(const json::value& v, double* out) {
  int64_t i = 0;
  if (v.is_double())
    *out = v.as_double();
  else if (as_integer(v, &i))
    *out = static_cast<double>(i);
  else
    return false;
  return true;
}

// XGBoost stores thresholds, leaves and weights as float: 1e300 is finite only here.
bool as_finite_float(const json::value& v, double* out) {
  return as_number(v, out) && std::isfinite(static_cast<float>(*out));
}

// XGBoost writes its parameters as strings ("23", "5E-1").
bool as_parameter(const json::value& v, double* out) {
  if (!v.is_string()) return as_number(v, out);
  const std::string text(v.as_string());
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return !text.empty() && *end == '\0';
}

bool as_count(const json::value& v, int64_t* out) {
  double d = 0;
  if (!as_parameter(v, &d) || !(d >= 0 && d <= 1e15) || d != std::floor(d)) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

// A parameter as the file spells it, without JSON quotes.
std::string text_of(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

// The member `key` of `o` with the kind asked for, or the defect naming `path.key`.
Status member(const json::object& o, const std::string& path, const char* key, json::kind kind,
              const json::value** out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return defect(path + key + " is missing");
  if (v->kind() != kind) return defect(path + key + " has the wrong type");
  *out = v;
  return Status::ok();
}

Status member_object(const json::object& o, const std::string& path, const char* key, const json::object** out) {
  const json::value* v = nullptr;
  Status s = member(o, path, key, json::kind::object, &v);
  if (s.is_ok()) *out = &v->as_object();
  return s;
}

// A tree's per-node arrays, each checked to hold num_nodes entries.
struct TreeArrays {
  const json::array *left, *right, *parents, *split_indices, *split_conditions, *base_weights, *default_left;
};

Status tree_arrays(const json::object& tree, const std::string& where, std::size_t nodes, TreeArrays* a) {
  const std::pair<const char*, const json::array**> arrays[] = {{"left_children", &a->left},
                                                                {"right_children", &a->right},
                                                                {"parents", &a->parents},
                                                                {"split_indices", &a->split_indices},
                                                                {"split_conditions", &a->split_conditions},
                                                                {"base_weights", &a->base_weights},
                                                                {"default_left", &a->default_left}};
  for (const auto& [key, out] : arrays) {
    const json::value* v = nullptr;
    Status s = member(tree, where + ": ", key, json::kind::array, &v);
    if (!s.is_ok()) return s;
    if (v->as_array().size() != nodes)
      return defect(where + ": " + key + " has " + std::to_string(v->as_array().size()) + " entries, num_nodes is " +
                    std::to_string(nodes));
    *out = &v->as_array();
  }
  // Categorical splits index a bitset the checks here do not cover: refused. XGBoost
  // reads num_nodes entries whatever the array's length, so a shorter one is a defect too.
  const json::value* types = tree.if_contains("split_type");
  if (types != nullptr && types->is_array()) {
    if (types->as_array().size() != nodes)
      return defect(where + ": split_type has " + std::to_string(types->as_array().size()) + " entries, num_nodes is " +
                    std::to_string(nodes));
    for (const auto& t : types->as_array())
      if (!(t.is_int64() && t.as_int64() == 0)) return defect(where + ": categorical splits are not supported");
  }
  const json::value* categories = tree.if_contains("categories_nodes");
  if (categories != nullptr && !(categories->is_array() && categories->as_array().empty()))
    return defect(where + ": categorical splits are not supported");
  return Status::ok();
}

using Children = std::initializer_list<std::pair<const char*, int64_t>>;

// One node's own fields: children both -1 (a leaf) or both in range, its split on a
// feature of the schema, finite numbers.
Status check_node(const TreeArrays& a, const std::string& where, std::size_t j, std::size_t nodes,
                  std::size_t feature_count) {
  const std::string at = where + " node " + std::to_string(j) + ": ";
  int64_t left = 0, right = 0, feature = 0, default_left = 0;
  double condition = 0, weight = 0;
  if (!as_integer((*a.left)[j], &left) || !as_integer((*a.right)[j], &right))
    return defect(at + "a child index is not an integer");
  if ((left == -1) != (right == -1)) return defect(at + "one child is -1 and the other is not (a leaf has both -1)");
  if (!as_finite_float((*a.split_conditions)[j], &condition))
    return defect(at + (left == -1 ? "leaf value is not finite" : "split condition is not finite"));
  if (!as_finite_float((*a.base_weights)[j], &weight)) return defect(at + "base weight is not finite");
  const json::value& d = (*a.default_left)[j];
  if (!(d.is_bool() || (as_integer(d, &default_left) && (default_left == 0 || default_left == 1))))
    return defect(at + "default_left is not 0 or 1");
  if (left == -1) return Status::ok();
  for (const auto& [side, child] : Children{{"left", left}, {"right", right}})
    if (child < 0 || child >= static_cast<int64_t>(nodes))
      return defect(at + side + " child " + std::to_string(child) + " is out of range (the tree has " +
                    std::to_string(nodes) + " nodes)");
  if (!as_integer((*a.split_indices)[j], &feature) || feature < 0 || feature >= static_cast<int64_t>(feature_count))
    return defect(at + "split on feature " + json::serialize((*a.split_indices)[j]) + ", the schema has " +
                  std::to_string(feature_count) + " features");
  return Status::ok();
}

// Every node reached exactly once from the root: no cycle, no node with two parents, no
// orphan; each child's parent entry names the node that points to it.
Status check_shape(const TreeArrays& a, const std::string& where, std::size_t nodes) {
  std::vector<char> reached(nodes, 0);
  std::vector<std::size_t> pending = {0};
  reached[0] = 1;
  while (!pending.empty()) {
    const std::size_t j = pending.back();
    pending.pop_back();
    const int64_t left = (*a.left)[j].to_number<int64_t>(), right = (*a.right)[j].to_number<int64_t>();
    if (left == -1) continue;
    for (const auto& [side, child] : Children{{"left", left}, {"right", right}}) {
      const auto c = static_cast<std::size_t>(child);
      if (reached[c])
        return defect(where + " node " + std::to_string(j) + ": " + side + " child " + std::to_string(c) +
                      " is reached twice (a cycle or a node with two parents)");
      reached[c] = 1;
      int64_t parent = 0;
      if (!as_integer((*a.parents)[c], &parent) || parent != static_cast<int64_t>(j))
        return defect(where + " node " + std::to_string(c) + ": parent is " + json::serialize((*a.parents)[c]) +
                      ", but node " + std::to_string(j) + " points to it");
      pending.push_back(c);
    }
  }
  for (std::size_t j = 0; j < nodes; ++j)
    if (!reached[j]) return defect(where + " node " + std::to_string(j) + ": not reached from the root");
  return Status::ok();
}

Status check_tree(const json::value& value, std::size_t index, std::size_t feature_count) {
  const std::string where = "tree " + std::to_string(index);
  if (!value.is_object()) return defect(where + ": not an object");
  const json::object& tree = value.as_object();
  const json::object* param = nullptr;
  Status s = member_object(tree, where + ": ", "tree_param", &param);
  if (!s.is_ok()) return s;
  const json::value* count = param->if_contains("num_nodes");
  int64_t nodes = 0;
  if (count == nullptr || !as_count(*count, &nodes) || nodes < 1)
    return defect(where + ": tree_param.num_nodes is not a node count");
  int64_t leaf_vector = 0;
  const json::value* leaf_size = param->if_contains("size_leaf_vector");
  if (leaf_size != nullptr && (!as_count(*leaf_size, &leaf_vector) || leaf_vector > 1))
    return defect(where + ": vector leaves (size_leaf_vector " + text_of(*leaf_size) + ") are not supported");
  TreeArrays a{};
  if (!(s = tree_arrays(tree, where, static_cast<std::size_t>(nodes), &a)).is_ok()) return s;
  for (std::size_t j = 0; j < static_cast<std::size_t>(nodes); ++j)
    if (!(s = check_node(a, where, j, static_cast<std::size_t>(nodes), feature_count)).is_ok()) return s;
  return check_shape(a, where, static_cast<std::size_t>(nodes));
}

Status check_learner(const json::object& learner, std::size_t feature_count) {
  const json::object *objective = nullptr, *param = nullptr, *booster = nullptr, *model = nullptr;
  const json::value* name = nullptr;
  Status s = member_object(learner, "learner.", "objective", &objective);
  if (s.is_ok()) s = member(*objective, "learner.objective.", "name", json::kind::string, &name);
  if (!s.is_ok()) return s;
  if (name->as_string() != kExpectedObjective)
    return defect("objective '" + std::string(name->as_string()) + "', the engine expects '" + kExpectedObjective +
                  "' (scores are probabilities)");
  if (!(s = member_object(learner, "learner.", "learner_model_param", &param)).is_ok()) return s;
  int64_t features = 0, classes = 0;
  const json::value* v = param->if_contains("num_feature");
  if (v == nullptr || !as_count(*v, &features))
    return defect("learner.learner_model_param.num_feature is missing or not a count");
  if (features != static_cast<int64_t>(feature_count))
    return defect("num_feature " + std::to_string(features) + ", the engine's schema has " +
                  std::to_string(feature_count));
  if ((v = param->if_contains("num_class")) != nullptr && (!as_count(*v, &classes) || classes > 1))
    return defect("num_class " + text_of(*v) + ": the engine scores one binary class");
  int64_t targets = 1;
  if ((v = param->if_contains("num_target")) != nullptr && (!as_count(*v, &targets) || targets != 1))
    return defect("num_target " + text_of(*v) + ": the engine scores one target");
  // A probability's base: strictly between 0 and 1 for binary:logistic.
  double base_score = 0.5;
  if ((v = param->if_contains("base_score")) != nullptr &&
      (!as_parameter(*v, &base_score) || !(base_score > 0 && base_score < 1)))
    return defect("base_score " + text_of(*v) + " is not a probability between 0 and 1");
  if (!(s = member_object(learner, "learner.", "gradient_booster", &booster)).is_ok()) return s;
  const json::value* kind = booster->if_contains("name");
  if (kind == nullptr || !kind->is_string() || kind->as_string() != "gbtree")
    return defect("gradient_booster " + (kind ? json::serialize(*kind) : std::string("without a name")) +
                  ": the engine checks and runs gbtree models only");
  if (!(s = member_object(*booster, "learner.gradient_booster.", "model", &model)).is_ok()) return s;
  const json::value* trees = nullptr;
  if (!(s = member(*model, "learner.gradient_booster.model.", "trees", json::kind::array, &trees)).is_ok()) return s;
  const std::size_t n = trees->as_array().size();
  // Without trees every item would score base_score: not a model of anything.
  if (n == 0) return defect("the model has no trees");
  const json::object* tree_counts = nullptr;
  int64_t declared = 0;
  if (!(s = member_object(*model, "learner.gradient_booster.model.", "gbtree_model_param", &tree_counts)).is_ok())
    return s;
  if ((v = tree_counts->if_contains("num_trees")) == nullptr || !as_count(*v, &declared) ||
      declared != static_cast<int64_t>(n))
    return defect("num_trees is " + (v ? text_of(*v) : std::string("missing")) + ", the model has " +
                  std::to_string(n) + " trees");
  const json::value* info = model->if_contains("tree_info");
  if (info == nullptr || !info->is_array() || info->as_array().size() != n)
    return defect("tree_info does not have one entry per tree (" + std::to_string(n) + ")");
  for (const auto& group : info->as_array())
    if (!(group.is_int64() && group.as_int64() == 0)) return defect("tree_info names a class other than 0");
  for (std::size_t i = 0; i < n; ++i)
    if (!(s = check_tree(trees->as_array()[i], i, feature_count)).is_ok()) return s;
  return Status::ok();
}

}  // namespace

Status validate_model_json(const std::string& bytes, std::size_t feature_count) {
  boost::system::error_code ec;
  const json::value root = json::parse(bytes, ec);
  if (ec) return defect("not an XGBoost JSON model (" + ec.message() + "); the engine writes and checks JSON only");
  const json::value* learner = root.is_object() ? root.as_object().if_contains("learner") : nullptr;
  if (learner == nullptr || !learner->is_object()) return defect("not an XGBoost JSON model (no 'learner' object)");
  return check_learner(learner->as_object(), feature_count);
}

}  // namespace streamscore
