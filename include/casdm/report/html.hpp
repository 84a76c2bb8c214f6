#pragma once
// Self-contained HTML pages of a run or a table: text, tables, figures — one file, its style
// inline, no script, no font and no picture fetched from elsewhere (figures are files beside the
// page, named by relative paths; anything else is refused). Written atomically, so a browser that
// reloads it never sees half a page.
//
//   casdm::report::Html page("casdm-train: CasDM");
//   page.refresh(30).heading("Figures").pairs({{"steps/s", "12.3"}}).figure("loss.svg", "training losses");
//   page.write("out/index.html");
#include "casdm/io/files.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace casdm::report {

/// Text made safe for HTML: & < > " ' as character references.
inline std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  return out;
}

/// A picture on a page: a file beside it (a relative path) and what it shows.
struct Figure {
  std::string src, caption;
};

class Html {
 public:
  explicit Html(std::string title) : title_(std::move(title)) {}

  /// Asks the browser to reload the page every `seconds` (a page of a run in progress; 0: never).
  Html& refresh(int seconds) { return refresh_ = std::max(seconds, 0), *this; }
  Html& heading(const std::string& text, int level = 2) {
    level = std::clamp(level, 1, 6);
    body_ += fmt::format("<h{0}>{1}</h{0}>\n", level, escape(text));
    return *this;
  }
  Html& paragraph(const std::string& text) { return body_ += fmt::format("<p>{}</p>\n", escape(text)), *this; }
  /// A table: a header row and rows of cells (text, escaped); numbers are right-aligned.
  Html& table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
    body_ += "<table>\n<tr>";
    for (const auto& h : header) body_ += fmt::format("<th>{}</th>", escape(h));
    body_ += "</tr>\n";
    for (const auto& r : rows) {
      body_ += "<tr>";
      for (const auto& c : r) body_ += fmt::format("<td{}>{}</td>", numeric(c) ? " class=\"n\"" : "", escape(c));
      body_ += "</tr>\n";
    }
    body_ += "</table>\n";
    return *this;
  }
  /// A two-column table of names and values.
  Html& pairs(const std::vector<std::pair<std::string, std::string>>& items) {
    body_ += "<table class=\"pairs\">\n";
    for (const auto& [k, v] : items)
      body_ += fmt::format("<tr><th>{}</th><td{}>{}</td></tr>\n", escape(k), numeric(v) ? " class=\"n\"" : "", escape(v));
    body_ += "</table>\n";
    return *this;
  }
  /// A picture with its caption, as wide as the page allows (`width` pixels at most; 0: its own).
  Html& figure(const Figure& f, int width = 0) {
    body_ += fmt::format("<figure><img src=\"{}\" alt=\"{}\"{}><figcaption>{}</figcaption></figure>\n",
                         escape(local(f.src)), escape(f.caption),
                         width > 0 ? fmt::format(" style=\"width:{}px\"", width) : "", escape(f.caption));
    return *this;
  }
  /// Pictures side by side (wrapping), each `width` pixels wide, with their captions.
  Html& gallery(const std::vector<Figure>& figures, int width = 240) {
    body_ += "<div class=\"gallery\">\n";
    for (const auto& f : figures) figure(f, width);
    body_ += "</div>\n";
    return *this;
  }
  /// A list of links to files beside the page (relative paths), each with a note.
  Html& files(const std::vector<std::pair<std::string, std::string>>& items) {
    body_ += "<ul>\n";
    for (const auto& [href, note] : items)
      body_ += fmt::format("<li><a href=\"{}\">{}</a>{}</li>\n", escape(local(href)), escape(href),
                           note.empty() ? "" : " — " + escape(note));
    body_ += "</ul>\n";
    return *this;
  }

  std::string str() const {
    return fmt::format(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n{}<title>{}</title>\n<style>\n{}</style>\n"
        "</head>\n<body>\n<h1>{}</h1>\n{}</body>\n</html>\n",
        refresh_ > 0 ? fmt::format("<meta http-equiv=\"refresh\" content=\"{}\">\n", refresh_) : "", escape(title_),
        style(), escape(title_), body_);
  }
  void write(const std::filesystem::path& path) const { io::write_atomic(path, str()); }

  /// `src` if it names a file beside the page or below it; a URL or an absolute path is refused
  /// (the page must not reach outside its folder).
  static const std::string& local(const std::string& src) {
    const bool scheme = src.find(':') != std::string::npos && src.find(':') < src.find('/');
    bool up = false;
    for (const auto& part : std::filesystem::path(src)) up = up || part == "..";
    if (src.empty() || scheme || src.front() == '/' || up)
      throw std::invalid_argument(fmt::format("a report links only files in its own folder (a relative path), not '{}'", src));
    return src;
  }

 private:
  static bool numeric(const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789.+-e% ±") == std::string::npos &&
           s.find_first_of("0123456789") != std::string::npos;
  }
  static const char* style() {
    return "body{font-family:sans-serif;margin:1.5em auto;max-width:1100px;color:#111;padding:0 1em}\n"
           "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em;border-bottom:1px solid #ddd}\n"
           "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}\n"
           "td.n{text-align:right;font-variant-numeric:tabular-nums}table.pairs th{background:#f5f5f5;font-weight:normal}\n"
           "figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}img{max-width:100%;image-rendering:pixelated}\n"
           "figure img[src$='.svg']{image-rendering:auto;width:900px}\n"
           "figcaption{font-size:.85em;color:#444;max-width:900px}.gallery figure img{image-rendering:pixelated}\n";
  }

  std::string title_, body_;
  int refresh_ = 0;
};

}  // namespace casdm::report
