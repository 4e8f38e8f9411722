// CAF's deterministic test scheduler and DSL (caf/test/dsl.hpp: test_coordinator_fixture,
// expect, allow) in a Boost.Test suite. The DSL reports its checks to CAF's own test
// engine, which exists only under CAF's test main; here they go to Boost.Test instead, so
// that these tests run, report and are labelled like every other suite. Include it in one
// translation unit per executable (it defines the CAF test engine's statics the fixture
// reads, without CAF's main). A failed `expect` stops the test case; its clause's destructor
// then touches the actor it never found, which Boost.Test reports as a memory access
// violation right after the failed check.
#pragma once

#include <boost/test/unit_test.hpp>

#define CAF_TEST_NO_MAIN
#include <caf/test/unit_test.hpp>
#include <caf/test/unit_test_impl.hpp>

#undef CAF_CHECK
#undef CAF_CHECK_EQUAL
#undef CAF_REQUIRE
#undef CAF_REQUIRE_EQUAL
#undef CAF_FAIL
#undef CAF_MESSAGE
#define CAF_CHECK(...) BOOST_CHECK(__VA_ARGS__)
#define CAF_CHECK_EQUAL(x, y) BOOST_CHECK((x) == (y))
#define CAF_REQUIRE(...) BOOST_REQUIRE(__VA_ARGS__)
#define CAF_REQUIRE_EQUAL(x, y) BOOST_REQUIRE((x) == (y))
#define CAF_FAIL(msg) BOOST_FAIL(msg)
#define CAF_MESSAGE(msg) BOOST_TEST_MESSAGE(msg)

#include <caf/test/dsl.hpp>
