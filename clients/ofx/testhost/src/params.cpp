// Value-holding parameter instances (no animation: a value holds at every time), and the JSON
// view of parameters used by the list, get and set commands.
#include <cmath>
#include <deque>
#include <stdexcept>

#include "host.hpp"

namespace th {

thread_local bool tHostIsSetting = false;

namespace {

using namespace OFX::Host;

// Values of one parameter, readable from any thread while the plugin renders.
class Values {
 public:
  explicit Values(const Property::Set &props, const std::string &type, int dim) : dim_(dim), v_(size_t(dim), 0.0) {
    bool isString = type == kOfxParamTypeString || type == kOfxParamTypeCustom;
    try {
      if (isString) {
        strings_.push_back(props.getStringProperty(kOfxParamPropDefault));
      } else if (type == kOfxParamTypeDouble || type == kOfxParamTypeDouble2D || type == kOfxParamTypeDouble3D ||
                 type == kOfxParamTypeRGB || type == kOfxParamTypeRGBA) {
        for (int i = 0; i < dim; i++) v_[size_t(i)] = props.getDoubleProperty(kOfxParamPropDefault, i);
      } else if (dim > 0) {
        for (int i = 0; i < dim; i++) v_[size_t(i)] = props.getIntProperty(kOfxParamPropDefault, i);
      }
    } catch (...) {
      // a parameter without a default keeps zero / the empty string
    }
    if (isString && strings_.empty()) strings_.push_back("");
  }
  double get(int i) const {
    std::lock_guard<std::mutex> l(m_);
    return v_[size_t(i)];
  }
  void set(int i, double x) {
    std::lock_guard<std::mutex> l(m_);
    v_[size_t(i)] = x;
  }
  // String values stay alive for the instance's lifetime: HostSupport hands plugins a pointer
  // into one shared buffer, which two render threads reading the parameter would overwrite for
  // each other; here each value keeps its own storage, so the pointer a plugin holds stays valid.
  const char *str() const {
    std::lock_guard<std::mutex> l(m_);
    return strings_.back().c_str();
  }
  void setStr(const char *s) {
    std::lock_guard<std::mutex> l(m_);
    if (strings_.back() != s) strings_.push_back(s ? s : "");
  }

 private:
  mutable std::mutex m_;
  int dim_;
  std::vector<double> v_;
  std::deque<std::string> strings_;
};

int dimOf(const std::string &type) {
  if (type == kOfxParamTypeInteger || type == kOfxParamTypeDouble || type == kOfxParamTypeBoolean ||
      type == kOfxParamTypeChoice || type == kOfxParamTypeStrChoice)
    return 1;
  if (type == kOfxParamTypeDouble2D || type == kOfxParamTypeInteger2D) return 2;
  if (type == kOfxParamTypeDouble3D || type == kOfxParamTypeInteger3D || type == kOfxParamTypeRGB) return 3;
  if (type == kOfxParamTypeRGBA) return 4;
  return 0;
}

#define TH_PARAM_CTOR(Cls, BaseCls)                                                        \
  Cls(Param::Descriptor &d, Param::SetInstance *set)                                       \
      : BaseCls(d, set), values(getProperties(), d.getType(), dimOf(d.getType())) {}      \
  Values values;

class IntegerParam : public Param::IntegerInstance {
 public:
  TH_PARAM_CTOR(IntegerParam, Param::IntegerInstance)
  OfxStatus get(int &v) override { return v = int(values.get(0)), kOfxStatOK; }
  OfxStatus get(OfxTime, int &v) override { return get(v); }
  OfxStatus set(int v) override { return values.set(0, v), kOfxStatOK; }
  OfxStatus set(OfxTime, int v) override { return set(v); }
};

class DoubleParam : public Param::DoubleInstance {
 public:
  TH_PARAM_CTOR(DoubleParam, Param::DoubleInstance)
  OfxStatus get(double &v) override { return v = values.get(0), kOfxStatOK; }
  OfxStatus get(OfxTime, double &v) override { return get(v); }
  OfxStatus set(double v) override { return values.set(0, v), kOfxStatOK; }
  OfxStatus set(OfxTime, double v) override { return set(v); }
  OfxStatus derive(OfxTime, double &v) override { return v = 0, kOfxStatOK; }
  OfxStatus integrate(OfxTime t1, OfxTime t2, double &v) override { return v = values.get(0) * (t2 - t1), kOfxStatOK; }
};

class BooleanParam : public Param::BooleanInstance {
 public:
  TH_PARAM_CTOR(BooleanParam, Param::BooleanInstance)
  OfxStatus get(bool &v) override { return v = values.get(0) != 0, kOfxStatOK; }
  OfxStatus get(OfxTime, bool &v) override { return get(v); }
  OfxStatus set(bool v) override { return values.set(0, v ? 1 : 0), kOfxStatOK; }
  OfxStatus set(OfxTime, bool v) override { return set(v); }
};

class ChoiceParam : public Param::ChoiceInstance {
 public:
  TH_PARAM_CTOR(ChoiceParam, Param::ChoiceInstance)
  OfxStatus get(int &v) override { return v = int(values.get(0)), kOfxStatOK; }
  OfxStatus get(OfxTime, int &v) override { return get(v); }
  OfxStatus set(int v) override { return values.set(0, v), kOfxStatOK; }
  OfxStatus set(OfxTime, int v) override { return set(v); }
};

class RGBAParam : public Param::RGBAInstance {
 public:
  TH_PARAM_CTOR(RGBAParam, Param::RGBAInstance)
  OfxStatus get(double &r, double &g, double &b, double &a) override {
    r = values.get(0), g = values.get(1), b = values.get(2), a = values.get(3);
    return kOfxStatOK;
  }
  OfxStatus get(OfxTime, double &r, double &g, double &b, double &a) override { return get(r, g, b, a); }
  OfxStatus set(double r, double g, double b, double a) override {
    values.set(0, r), values.set(1, g), values.set(2, b), values.set(3, a);
    return kOfxStatOK;
  }
  OfxStatus set(OfxTime, double r, double g, double b, double a) override { return set(r, g, b, a); }
};

class RGBParam : public Param::RGBInstance {
 public:
  TH_PARAM_CTOR(RGBParam, Param::RGBInstance)
  OfxStatus get(double &r, double &g, double &b) override {
    r = values.get(0), g = values.get(1), b = values.get(2);
    return kOfxStatOK;
  }
  OfxStatus get(OfxTime, double &r, double &g, double &b) override { return get(r, g, b); }
  OfxStatus set(double r, double g, double b) override {
    values.set(0, r), values.set(1, g), values.set(2, b);
    return kOfxStatOK;
  }
  OfxStatus set(OfxTime, double r, double g, double b) override { return set(r, g, b); }
};

class Double2DParam : public Param::Double2DInstance {
 public:
  TH_PARAM_CTOR(Double2DParam, Param::Double2DInstance)
  OfxStatus get(double &x, double &y) override { return x = values.get(0), y = values.get(1), kOfxStatOK; }
  OfxStatus get(OfxTime, double &x, double &y) override { return get(x, y); }
  OfxStatus set(double x, double y) override { return values.set(0, x), values.set(1, y), kOfxStatOK; }
  OfxStatus set(OfxTime, double x, double y) override { return set(x, y); }
};

class Integer2DParam : public Param::Integer2DInstance {
 public:
  TH_PARAM_CTOR(Integer2DParam, Param::Integer2DInstance)
  OfxStatus get(int &x, int &y) override { return x = int(values.get(0)), y = int(values.get(1)), kOfxStatOK; }
  OfxStatus get(OfxTime, int &x, int &y) override { return get(x, y); }
  OfxStatus set(int x, int y) override { return values.set(0, x), values.set(1, y), kOfxStatOK; }
  OfxStatus set(OfxTime, int x, int y) override { return set(x, y); }
};

class Double3DParam : public Param::Double3DInstance {
 public:
  TH_PARAM_CTOR(Double3DParam, Param::Double3DInstance)
  OfxStatus get(double &x, double &y, double &z) override {
    return x = values.get(0), y = values.get(1), z = values.get(2), kOfxStatOK;
  }
  OfxStatus get(OfxTime, double &x, double &y, double &z) override { return get(x, y, z); }
  OfxStatus set(double x, double y, double z) override {
    return values.set(0, x), values.set(1, y), values.set(2, z), kOfxStatOK;
  }
  OfxStatus set(OfxTime, double x, double y, double z) override { return set(x, y, z); }
};

class Integer3DParam : public Param::Integer3DInstance {
 public:
  TH_PARAM_CTOR(Integer3DParam, Param::Integer3DInstance)
  OfxStatus get(int &x, int &y, int &z) override {
    return x = int(values.get(0)), y = int(values.get(1)), z = int(values.get(2)), kOfxStatOK;
  }
  OfxStatus get(OfxTime, int &x, int &y, int &z) override { return get(x, y, z); }
  OfxStatus set(int x, int y, int z) override {
    return values.set(0, x), values.set(1, y), values.set(2, z), kOfxStatOK;
  }
  OfxStatus set(OfxTime, int x, int y, int z) override { return set(x, y, z); }
};

template <class BaseCls>
class StringLikeParam : public BaseCls {
 public:
  StringLikeParam(Param::Descriptor &d, Param::SetInstance *set)
      : BaseCls(d, set), values(this->getProperties(), d.getType(), 0) {}
  Values values;
  OfxStatus get(std::string &v) override { return v = values.str(), kOfxStatOK; }
  OfxStatus get(OfxTime, std::string &v) override { return get(v); }
  OfxStatus set(const char *v) override { return values.setStr(v ? v : ""), kOfxStatOK; }
  OfxStatus set(OfxTime, const char *v) override { return set(v); }
  // stable storage per value (see Values::str)
  OfxStatus getV(va_list arg) override {
    const char **value = va_arg(arg, const char **);
    *value = values.str();
    return kOfxStatOK;
  }
  OfxStatus getV(OfxTime, va_list arg) override { return getV(arg); }
};
using StringParam = StringLikeParam<Param::StringInstance>;
using CustomParam = StringLikeParam<Param::CustomInstance>;

class PushbuttonParam : public Param::PushbuttonInstance {
 public:
  PushbuttonParam(Param::Descriptor &d, Param::SetInstance *set) : Param::PushbuttonInstance(d, set) {}
};

Json optionList(const Property::Set &props, const char *name) {
  Json a = Json::array();
  int n = props.getDimension(name);
  for (int i = 0; i < n; i++) a.push(props.getStringProperty(name, i));
  return a;
}

Json numbers(const Property::Set &props, const char *name, bool isDouble) {
  Json a = Json::array();
  if (!props.fetchProperty(name)) return Json();
  int n = props.getDimension(name);
  for (int i = 0; i < n; i++) {
    if (isDouble) a.push(props.getDoubleProperty(name, i));
    else a.push(props.getIntProperty(name, i));
  }
  if (n == 1) return a[0];
  return a;
}

}  // namespace

OFX::Host::Param::Instance *Effect::newParam(const std::string & /*name*/, OFX::Host::Param::Descriptor &d) {
  const std::string &t = d.getType();
  if (t == kOfxParamTypeInteger) return new IntegerParam(d, this);
  if (t == kOfxParamTypeDouble) return new DoubleParam(d, this);
  if (t == kOfxParamTypeBoolean) return new BooleanParam(d, this);
  if (t == kOfxParamTypeChoice) return new ChoiceParam(d, this);
  if (t == kOfxParamTypeRGBA) return new RGBAParam(d, this);
  if (t == kOfxParamTypeRGB) return new RGBParam(d, this);
  if (t == kOfxParamTypeDouble2D) return new Double2DParam(d, this);
  if (t == kOfxParamTypeInteger2D) return new Integer2DParam(d, this);
  if (t == kOfxParamTypeDouble3D) return new Double3DParam(d, this);
  if (t == kOfxParamTypeInteger3D) return new Integer3DParam(d, this);
  if (t == kOfxParamTypeString) return new StringParam(d, this);
  if (t == kOfxParamTypeCustom) return new CustomParam(d, this);
  if (t == kOfxParamTypePushButton) return new PushbuttonParam(d, this);
  if (t == kOfxParamTypeGroup) return new OFX::Host::Param::GroupInstance(d, this);
  if (t == kOfxParamTypePage) return new OFX::Host::Param::PageInstance(d, this);
  return nullptr;  // HostSupport reports the type as unsupported to the plugin
}

Json paramValue(OFX::Host::Param::Instance *p) {
  using namespace OFX::Host::Param;
  const std::string &t = p->getType();
  if (auto *s = dynamic_cast<StringParam *>(p)) return Json(std::string(s->values.str()));
  if (auto *s = dynamic_cast<CustomParam *>(p)) return Json(std::string(s->values.str()));
  int dim = dimOf(t);
  if (dim == 0) return Json();
  auto get = [&](int i) -> double {
    if (auto *q = dynamic_cast<IntegerParam *>(p)) return q->values.get(i);
    if (auto *q = dynamic_cast<DoubleParam *>(p)) return q->values.get(i);
    if (auto *q = dynamic_cast<BooleanParam *>(p)) return q->values.get(i);
    if (auto *q = dynamic_cast<ChoiceParam *>(p)) return q->values.get(i);
    if (auto *q = dynamic_cast<RGBAParam *>(p)) return q->values.get(i);
    if (auto *q = dynamic_cast<RGBParam *>(p)) return q->values.get(i);
    if (auto *q = dynamic_cast<Double2DParam *>(p)) return q->values.get(i);
    if (auto *q = dynamic_cast<Integer2DParam *>(p)) return q->values.get(i);
    if (auto *q = dynamic_cast<Double3DParam *>(p)) return q->values.get(i);
    if (auto *q = dynamic_cast<Integer3DParam *>(p)) return q->values.get(i);
    return 0;
  };
  bool isDouble = t == kOfxParamTypeDouble || t == kOfxParamTypeDouble2D || t == kOfxParamTypeDouble3D ||
                  t == kOfxParamTypeRGB || t == kOfxParamTypeRGBA;
  auto one = [&](int i) -> Json {
    if (t == kOfxParamTypeBoolean) return Json(get(i) != 0);
    if (isDouble) return Json(get(i));
    return Json((long long)get(i));
  };
  if (dim == 1) return one(0);
  Json a = Json::array();
  for (int i = 0; i < dim; i++) a.push(one(i));
  return a;
}

OfxStatus setParamValue(OFX::Host::Param::Instance *p, const Json &value) {
  using namespace OFX::Host::Param;
  const std::string &t = p->getType();
  auto num = [&](const Json &v) -> double {
    if (v.isBool()) return v.asBool() ? 1 : 0;
    return v.asDouble();
  };
  auto integer = [&](const Json &v) -> int {
    double d = num(v);
    if (std::floor(d) != d) throw std::runtime_error("parameter " + p->getName() + " takes an integer");
    return int(d);
  };
  auto vec = [&](size_t n) -> std::vector<double> {
    if (!value.isArray() || value.size() != n)
      throw std::runtime_error("parameter " + p->getName() + " takes " + std::to_string(n) + " numbers");
    std::vector<double> out;
    for (size_t i = 0; i < n; i++) out.push_back(num(value[i]));
    return out;
  };
  if (auto *q = dynamic_cast<StringParam *>(p)) {
    if (!value.isString()) throw std::runtime_error("parameter " + p->getName() + " takes a string");
    return q->set(value.asString().c_str());
  }
  if (auto *q = dynamic_cast<CustomParam *>(p)) {
    if (!value.isString()) throw std::runtime_error("parameter " + p->getName() + " takes a string");
    return q->set(value.asString().c_str());
  }
  if (auto *q = dynamic_cast<IntegerParam *>(p)) return q->set(integer(value));
  if (auto *q = dynamic_cast<DoubleParam *>(p)) return q->set(num(value));
  if (auto *q = dynamic_cast<BooleanParam *>(p)) {
    if (!value.isBool() && !value.isNumber()) throw std::runtime_error("parameter " + p->getName() + " takes true or false");
    return q->set(num(value) != 0);
  }
  if (auto *q = dynamic_cast<ChoiceParam *>(p)) {
    int n = q->getProperties().getDimension(kOfxParamPropChoiceOption);
    int index = -1;
    if (value.isString()) {
      for (int i = 0; i < n; i++)
        if (q->getProperties().getStringProperty(kOfxParamPropChoiceOption, i) == value.asString()) index = i;
      if (index < 0) throw std::runtime_error("parameter " + p->getName() + " has no option \"" + value.asString() + "\"");
    } else {
      index = integer(value);
    }
    if (index < 0 || index >= n)
      throw std::runtime_error("parameter " + p->getName() + " has options 0.." + std::to_string(n - 1));
    return q->set(index);
  }
  if (auto *q = dynamic_cast<RGBAParam *>(p)) {
    auto v = vec(4);
    return q->set(v[0], v[1], v[2], v[3]);
  }
  if (auto *q = dynamic_cast<RGBParam *>(p)) {
    auto v = vec(3);
    return q->set(v[0], v[1], v[2]);
  }
  if (auto *q = dynamic_cast<Double2DParam *>(p)) {
    auto v = vec(2);
    return q->set(v[0], v[1]);
  }
  if (auto *q = dynamic_cast<Integer2DParam *>(p)) {
    auto v = vec(2);
    return q->set(int(v[0]), int(v[1]));
  }
  if (auto *q = dynamic_cast<Double3DParam *>(p)) {
    auto v = vec(3);
    return q->set(v[0], v[1], v[2]);
  }
  if (auto *q = dynamic_cast<Integer3DParam *>(p)) {
    auto v = vec(3);
    return q->set(int(v[0]), int(v[1]), int(v[2]));
  }
  throw std::runtime_error("parameter " + p->getName() + " (" + t + ") holds no value");
}

Json describeParam(const OFX::Host::Param::Base &p, bool withValue) {
  const OFX::Host::Property::Set &props = p.getProperties();
  const std::string &t = p.getType();
  Json j = Json::object();
  j.set("name", p.getName());
  j.set("type", t);
  // short type name: "string", "int", "double", "bool", "choice", ...
  static const std::map<std::string, std::string> shortNames = {
      {kOfxParamTypeInteger, "int"},       {kOfxParamTypeDouble, "double"},       {kOfxParamTypeBoolean, "bool"},
      {kOfxParamTypeChoice, "choice"},     {kOfxParamTypeStrChoice, "strchoice"}, {kOfxParamTypeRGBA, "rgba"},
      {kOfxParamTypeRGB, "rgb"},           {kOfxParamTypeDouble2D, "double2d"},   {kOfxParamTypeInteger2D, "int2d"},
      {kOfxParamTypeDouble3D, "double3d"}, {kOfxParamTypeInteger3D, "int3d"},     {kOfxParamTypeString, "string"},
      {kOfxParamTypeCustom, "custom"},     {kOfxParamTypeGroup, "group"},         {kOfxParamTypePage, "page"},
      {kOfxParamTypePushButton, "button"}, {"OfxParamTypeParametric", "parametric"}};
  auto sn = shortNames.find(t);
  j.set("kind", sn == shortNames.end() ? t : sn->second);
  j.set("label", p.getLabel());
  j.set("hint", p.getHint());
  j.set("script_name", p.getScriptName());
  j.set("parent", p.getParentName());
  j.set("enabled", p.getEnabled());
  j.set("secret", p.getSecret());
  try {
    j.set("animates", p.getCanAnimate());
    j.set("evaluate_on_change", p.getEvaluateOnChange());
  } catch (...) {
  }
  bool isDouble = t == kOfxParamTypeDouble || t == kOfxParamTypeDouble2D || t == kOfxParamTypeDouble3D ||
                  t == kOfxParamTypeRGB || t == kOfxParamTypeRGBA;
  if (props.fetchProperty(kOfxParamPropDefault)) {
    if (t == kOfxParamTypeString || t == kOfxParamTypeCustom || t == kOfxParamTypeStrChoice) {
      j.set("default", props.getStringProperty(kOfxParamPropDefault));
    } else if (t == kOfxParamTypeBoolean) {
      j.set("default", props.getIntProperty(kOfxParamPropDefault) != 0);
    } else {
      j.set("default", numbers(props, kOfxParamPropDefault, isDouble));
    }
  }
  if (props.fetchProperty(kOfxParamPropChoiceOption)) j.set("options", optionList(props, kOfxParamPropChoiceOption));
  if (props.fetchProperty(kOfxParamPropStringMode)) j.set("string_mode", props.getStringProperty(kOfxParamPropStringMode));
  if (props.fetchProperty(kOfxParamPropMin)) {
    j.set("min", numbers(props, kOfxParamPropMin, isDouble));
    j.set("max", numbers(props, kOfxParamPropMax, isDouble));
  }
  if (props.fetchProperty(kOfxParamPropDoubleType)) j.set("double_type", props.getStringProperty(kOfxParamPropDoubleType));
  if (withValue) {
    auto *inst = dynamic_cast<OFX::Host::Param::Instance *>(const_cast<OFX::Host::Param::Base *>(&p));
    if (inst) j.set("value", paramValue(inst));
  }
  return j;
}

}  // namespace th
