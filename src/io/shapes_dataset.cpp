// The embedded data set: ten classes of shapes and textures rendered into noisy, cluttered images.
//
// Every image is drawn from its own SplitMix64 stream (derive_seed(split seed, index + 1)), so
// an image depends only on the seed, the split and its index. Shapes are signed distance
// functions in the object's frame; a pixel averages four sub-samples, each a half-pixel-wide
// soft edge, which is the light anti-aliasing. Only float arithmetic, sqrt and floor are used
// (no sin/cos: rotations are drawn as unit vectors), so a build without fused multiply-adds
// gives the same bytes on every IEEE platform.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "convkit/io/datasets.hpp"

namespace convkit::io {
namespace {

enum Kind { kDisc, kRing, kSquare, kFrame, kTriangle, kPlus, kXCross, kStripes, kChecker, kStar };
constexpr int kClasses = 10;

struct V2 {
  float x, y;
};
float length(V2 p) { return std::sqrt(p.x * p.x + p.y * p.y); }
float clampf(float v, float lo, float hi) { return std::min(std::max(v, lo), hi); }

/// Signed distance to an axis-aligned box of half sizes (hx, hy) centred at the origin.
float box(V2 p, float hx, float hy) {
  const float qx = std::abs(p.x) - hx, qy = std::abs(p.y) - hy;
  return length({std::max(qx, 0.0f), std::max(qy, 0.0f)}) + std::min(std::max(qx, qy), 0.0f);
}

/// Equilateral triangle with circumradius r, one vertex up (Inigo Quilez's formula).
float triangle(V2 p, float r) {
  constexpr float k = 1.7320508f;  // sqrt(3)
  const float half_side = r * k / 2;
  p.x = std::abs(p.x) - half_side;
  p.y = -p.y + half_side / k;  // image y grows downwards
  if (p.x + k * p.y > 0) p = {(p.x - k * p.y) / 2, (-k * p.x - p.y) / 2};
  p.x -= clampf(p.x, -2 * half_side, 0);
  return p.y < 0 ? length(p) : -length(p);
}

/// Five-pointed star of outer radius r and inner-radius factor rf (Inigo Quilez's formula).
float star5(V2 p, float r, float rf) {
  constexpr V2 k1{0.809016994f, -0.587785252f}, k2{-0.809016994f, -0.587785252f};
  p.x = std::abs(p.x);
  float d = 2 * std::max(k1.x * p.x + k1.y * p.y, 0.0f);
  p = {p.x - d * k1.x, p.y - d * k1.y};
  d = 2 * std::max(k2.x * p.x + k2.y * p.y, 0.0f);
  p = {p.x - d * k2.x, p.y - d * k2.y};
  p.x = std::abs(p.x);
  p.y -= r;
  const V2 ba{-rf * k1.y, rf * k1.x - 1};
  const float h = clampf((p.x * ba.x + p.y * ba.y) / (ba.x * ba.x + ba.y * ba.y), 0, r);
  const float dist = length({p.x - ba.x * h, p.y - ba.y * h});
  return p.y * ba.x - p.x * ba.y > 0 ? dist : -dist;
}

/// One thing to draw: a class shape or a piece of clutter, in pixel units.
struct Shape2d {
  int kind = kDisc;
  float cx = 0, cy = 0;  // centre
  float c = 1, s = 0;    // rotation (cos, sin): local u = c*dx + s*dy, v = -s*dx + c*dy
  float r = 1;           // bounding radius: nothing is drawn farther from the centre
  float t = 1;           // half thickness of strokes, stripe period or checker cell
  float phase = 0;       // stripe offset, in periods
  float rgb[3] = {0, 0, 0};

  /// Signed distance (pixels, < 0 inside) at local coordinates (u, v).
  float distance(V2 p) const {
    switch (kind) {
      case kDisc:
        return length(p) - 0.8f * r;
      case kRing:
        return std::abs(length(p) - 0.8f * r + t) - t;
      case kSquare:
        return box(p, 0.7f * r, 0.7f * r);
      case kFrame:
        return std::abs(box(p, 0.7f * r - t, 0.7f * r - t)) - t;
      case kTriangle:
        return triangle(p, r);
      case kPlus:
      case kXCross:
        return std::min(box(p, 0.95f * r, t), box(p, t, 0.95f * r));
      case kStripes: {  // bars of half the period, inside a disc
        const float q = p.x / t + phase, f = std::abs(q - std::floor(q) - 0.5f) * t - 0.25f * t;
        return std::max(length(p) - 0.9f * r, f);
      }
      case kChecker: {  // cells of size t from the corner of a square patch; even cells filled
        const float h = 0.7f * r, a = (p.x + h) / t, b = (p.y + h) / t;
        const float fa = std::floor(a), fb = std::floor(b);
        const float edge =
            std::min(0.5f - std::abs(a - fa - 0.5f), 0.5f - std::abs(b - fb - 0.5f)) * t;
        const bool on = (static_cast<int>(fa) + static_cast<int>(fb)) % 2 == 0;
        return std::max(box(p, h, h), on ? -edge : edge);
      }
      case kStar:
        return star5(p, r, 0.45f);
      default:
        return std::abs(p.y) - t + std::max(std::abs(p.x) - r, 0.0f);  // clutter line
    }
  }
};
constexpr int kLine = kClasses;  // clutter: a short stroke (distance()'s default)

/// Blends `shape` into the planar RGB image: 2x2 sub-samples per pixel, each a soft edge.
void draw(float* img, std::int64_t size, const Shape2d& shape) {
  const auto lo = [&](float v) {
    return std::max<std::int64_t>(0, static_cast<std::int64_t>(v - shape.r - 1));
  };
  const auto hi = [&](float v) {
    return std::min<std::int64_t>(size, static_cast<std::int64_t>(v + shape.r + 2));
  };
  const std::int64_t plane = size * size;
  for (std::int64_t y = lo(shape.cy); y < hi(shape.cy); ++y)
    for (std::int64_t x = lo(shape.cx); x < hi(shape.cx); ++x) {
      float cover = 0;
      for (int k = 0; k < 4; ++k) {
        const float dx =
            static_cast<float>(x) + 0.25f + 0.5f * static_cast<float>(k & 1) - shape.cx;
        const float dy =
            static_cast<float>(y) + 0.25f + 0.5f * static_cast<float>(k >> 1) - shape.cy;
        const float d = shape.distance({shape.c * dx + shape.s * dy, shape.c * dy - shape.s * dx});
        cover += clampf(0.5f - 2 * d, 0, 1);
      }
      if (cover == 0) continue;
      cover *= 0.25f;
      for (int ch = 0; ch < 3; ++ch) {
        float& v = img[ch * plane + y * size + x];
        v += cover * (shape.rgb[ch] - v);
      }
    }
}

float uniform(SplitMix64& rng, float lo, float hi) {
  return static_cast<float>(rng.uniform(lo, hi));
}

/// A uniformly random direction (cos, sin) at most `max_tan` away from the x axis (any
/// direction for max_tan < 0), by rejection: no trigonometry, so no libm differences.
V2 direction(SplitMix64& rng, float max_tan) {
  for (;;) {
    const float a = uniform(rng, -1, 1), b = uniform(rng, -1, 1), r2 = a * a + b * b;
    if (r2 > 1 || r2 < 0.0625f) continue;
    if (max_tan >= 0 && (a <= 0 || std::abs(b) > max_tan * a)) continue;
    const float n = std::sqrt(r2);
    return {a / n, b / n};
  }
}

float luma(const float* rgb) { return 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2]; }

/// Renders one image of class `kind` into `img` (3 x size x size, planar) from `rng`.
void render(float* img, std::int64_t size, int kind, SplitMix64& rng) {
  const auto s = static_cast<float>(size);
  // Background and object colours come from the same distribution (so neither the mean nor any
  // pixel's colour says anything about the class), redrawn until their brightness differs.
  float bg[3], fg[3];
  do {
    for (int ch = 0; ch < 3; ++ch) bg[ch] = uniform(rng, 0, 1), fg[ch] = uniform(rng, 0, 1);
  } while (std::abs(luma(bg) - luma(fg)) < 0.2f);
  const V2 gradient = direction(rng, -1);
  const float slope = uniform(rng, 0, 0.2f) / s;  // brightness change per pixel
  const std::int64_t plane = size * size;
  for (std::int64_t y = 0; y < size; ++y)
    for (std::int64_t x = 0; x < size; ++x) {
      const float g = slope * (gradient.x * (static_cast<float>(x) - s / 2) +
                               gradient.y * (static_cast<float>(y) - s / 2));
      for (int ch = 0; ch < 3; ++ch) img[ch * plane + y * size + x] = bg[ch] + g;
    }

  // Clutter under the object: blobs and strokes a fraction of the object's size.
  const int clutter = 2 + static_cast<int>(rng.next() % 3);
  for (int k = 0; k < clutter; ++k) {
    Shape2d c;
    c.kind = rng.next() % 2 == 0 ? kDisc : kLine;
    c.cx = uniform(rng, 0, s), c.cy = uniform(rng, 0, s);
    const V2 d = direction(rng, -1);
    c.c = d.x, c.s = d.y;
    c.r = c.kind == kDisc ? uniform(rng, 0.045f, 0.075f) * s : uniform(rng, 0.06f, 0.1f) * s;
    c.t = 0.5f;
    for (float& v : c.rgb) v = uniform(rng, 0, 1);
    draw(img, size, c);
  }

  // The object: anywhere it fits, at any size in range; crosses keep within 15 degrees of
  // upright (plus) or of 45 degrees (x), so one never turns into the other.
  Shape2d o;
  o.kind = kind;
  o.r = uniform(rng, 0.2f, 0.38f) * s;
  o.cx = uniform(rng, o.r + 0.5f, s - o.r - 0.5f), o.cy = uniform(rng, o.r + 0.5f, s - o.r - 0.5f);
  V2 d = direction(rng, kind == kPlus || kind == kXCross ? 0.2679492f : -1);  // tan(15 deg)
  if (kind == kXCross) d = {0.70710678f * (d.x - d.y), 0.70710678f * (d.x + d.y)};
  o.c = d.x, o.s = d.y;
  switch (kind) {
    case kRing:
    case kFrame:
      o.t = std::max(0.8f, uniform(rng, 0.11f, 0.15f) * o.r);
      break;
    case kPlus:
    case kXCross:
      o.t = std::max(0.9f, uniform(rng, 0.17f, 0.23f) * o.r);
      break;
    case kStripes:
      o.t = 1.8f * o.r / uniform(rng, 3, 4);
      o.phase = uniform(rng, 0, 1);
      break;
    case kChecker:
      o.t = 1.4f * o.r / static_cast<float>(3 + rng.next() % 2);
      break;
    default:
      break;
  }
  std::copy(fg, fg + 3, o.rgb);
  draw(img, size, o);

  // Pixel noise: a sum of four uniforms (close to Gaussian), strength drawn per image.
  // The sum of four uniforms has mean 2 and deviation 1/sqrt(3): the noise's is 0.02 .. 0.06.
  const float scale = uniform(rng, 0.02f, 0.06f) * 1.7320508f;
  for (std::int64_t k = 0; k < 3 * plane; ++k) {
    const std::uint64_t bits = rng.next();
    const auto u = static_cast<float>((bits & 0xFFFF) + ((bits >> 16) & 0xFFFF) +
                                      ((bits >> 32) & 0xFFFF) + (bits >> 48));
    img[k] = clampf(img[k] + scale * (u * (1.0f / 65536.0f) - 2.0f), 0, 1);
  }
}

Dataset make_split(std::int64_t n, std::int64_t size, std::uint64_t seed) {
  Dataset d{Tensor::empty({n, 3, size, size}), Tensor::empty({n}, DType::I64),
            shapes_class_names()};
  // Balanced: image i would be class i % 10; a seeded permutation spreads the classes out.
  const std::vector<std::int64_t> order = permutation(n, derive_seed(seed, 0));
  float* images = d.images.data<float>();
  std::int64_t* labels = d.labels.data<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    labels[i] = order[static_cast<std::size_t>(i)] % kClasses;
    SplitMix64 rng{derive_seed(seed, static_cast<std::uint64_t>(i) + 1)};
    render(images + i * 3 * size * size, size, static_cast<int>(labels[i]), rng);
  }
  return d;
}

}  // namespace

std::vector<std::string> shapes_class_names() {
  return {"disc", "ring",    "square",  "square_frame", "triangle",
          "plus", "x_cross", "stripes", "checkerboard", "star"};
}

DatasetSplit make_shapes(const ShapesOptions& options) {
  if (options.train <= 0 || options.test <= 0)
    throw InvalidArgument(fmt::format("make_shapes: train and test must be > 0, got {} and {}",
                                      options.train, options.test));
  if (options.image_size < 16 || options.image_size > 4096)
    throw InvalidArgument(
        fmt::format("make_shapes: image_size must be in [16, 4096], got {}", options.image_size));
  return {make_split(options.train, options.image_size, derive_seed(options.seed, 1)),
          make_split(options.test, options.image_size, derive_seed(options.seed, 2))};
}

}  // namespace convkit::io
