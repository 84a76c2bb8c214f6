#pragma once
// The library's one corner of Boost.Hana: compile-time lists of heterogeneous policies.
// Nothing from here appears in a public signature.
#include <boost/hana/all_of.hpp>
#include <boost/hana/count.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/transform.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>

#include <type_traits>

namespace casdm::detail {

namespace hana = boost::hana;

/// True when no two of `Ts` share a `kind` (Hana checks map keys only in debug mode, so the
/// library checks uniqueness itself).
template <class... Ts>
constexpr bool unique_kinds() {
  constexpr auto kinds = hana::make_tuple(hana::type_c<typename Ts::kind>...);
  return hana::all_of(kinds, [&](auto k) { return hana::count(kinds, k) == hana::size_c<1>; });
}

/// Calls f(hana::type_c<T>) for each T, in order.
template <class... Ts, class F>
void for_each_type(F&& f) {
  hana::for_each(hana::tuple_t<Ts...>, f);
}

}  // namespace casdm::detail
