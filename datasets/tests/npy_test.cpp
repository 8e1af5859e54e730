// The .npy reader/writer against files numpy itself wrote (npy_fixtures/, made by make_fixtures.py) and against
// damaged files: every way a file can be wrong must produce an error naming the file and the fault.
#include "multibox/npy.hpp"

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace multibox::npy {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const fs::path kFixtures = MULTIBOX_NPY_FIXTURES;

// What numpy's f4_2x3.npy holds: arange(6).reshape(2, 3) * 0.5 - 1.25, all exact in float32.
const std::vector<float> kF4 = {-1.25f, -0.75f, -0.25f, 0.25f, 0.75f, 1.25f};

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("multibox_npy_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::vector<unsigned char> slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  fs::path spit(const std::string& name, const std::vector<unsigned char>& bytes) {
    const fs::path path = dir_ / name;
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  fs::path dir_;
};

TEST_F(NpyTest, RoundTripsEveryDtypeAndShape) {
  const std::vector<float> f = {1.5f, -2.0f, 3.25e-8f, 1e30f, -0.0f, 7.0f};
  const std::vector<int32_t> i = {INT32_MIN, -1, 0, 1, INT32_MAX, 42};
  const std::vector<uint8_t> u = {0, 1, 127, 128, 254, 255};
  ASSERT_TRUE(write(dir_ / "f.npy", f, {1, 2, 3}).ok());
  ASSERT_TRUE(write(dir_ / "i.npy", i, {6}).ok());
  ASSERT_TRUE(write(dir_ / "u.npy", u, {3, 2}).ok());
  std::vector<int64_t> shape;
  auto fr = read_as<float>(dir_ / "f.npy", {1, 2, 3}, &shape);
  ASSERT_TRUE(fr.ok()) << fr.status().to_string();
  EXPECT_EQ(*fr, f);
  EXPECT_THAT(shape, ElementsAre(1, 2, 3));
  auto ir = read_as<int32_t>(dir_ / "i.npy", {6});
  ASSERT_TRUE(ir.ok()) << ir.status().to_string();
  EXPECT_EQ(*ir, i);
  auto ur = read_as<uint8_t>(dir_ / "u.npy", {kAnyDim, 2});
  ASSERT_TRUE(ur.ok()) << ur.status().to_string();
  EXPECT_EQ(*ur, u);
}

TEST_F(NpyTest, RoundTripsEmptyAndScalarShapes) {
  ASSERT_TRUE(write(dir_ / "empty.npy", std::vector<float>{}, {0, 4}).ok());
  auto empty = read_as<float>(dir_ / "empty.npy", {kAnyDim, 4});
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(write(dir_ / "scalar.npy", std::vector<int32_t>{9}, {}).ok());
  auto scalar = read(dir_ / "scalar.npy");
  ASSERT_TRUE(scalar.ok()) << scalar.status().to_string();
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->elements(), 1);
}

// Our writer produces the very bytes numpy.save produces, so np.load needs no leniency to read our files.
TEST_F(NpyTest, WritesByteForByteWhatNumpyWrites) {
  ASSERT_TRUE(write(dir_ / "f4.npy", kF4, {2, 3}).ok());
  EXPECT_EQ(slurp(dir_ / "f4.npy"), slurp(kFixtures / "f4_2x3.npy"));
  ASSERT_TRUE(write(dir_ / "i4.npy", std::vector<int32_t>{-2, -1, 0, 7, 2147483647}, {5}).ok());
  EXPECT_EQ(slurp(dir_ / "i4.npy"), slurp(kFixtures / "i4_5.npy"));
  ASSERT_TRUE(write(dir_ / "u1.npy", std::vector<uint8_t>{0, 255, 1, 128}, {2, 2}).ok());
  EXPECT_EQ(slurp(dir_ / "u1.npy"), slurp(kFixtures / "u1_2x2.npy"));
}

TEST_F(NpyTest, ReadsNumpyFiles) {
  auto f4 = read_as<float>(kFixtures / "f4_2x3.npy", {2, 3});
  ASSERT_TRUE(f4.ok()) << f4.status().to_string();
  EXPECT_EQ(*f4, kF4);
  auto v2 = read_as<float>(kFixtures / "f4_v2_2x3.npy", {2, 3});
  ASSERT_TRUE(v2.ok()) << v2.status().to_string();
  EXPECT_EQ(*v2, kF4);
  auto i4 = read_as<int32_t>(kFixtures / "i4_5.npy", {5});
  ASSERT_TRUE(i4.ok()) << i4.status().to_string();
  EXPECT_THAT(*i4, ElementsAre(-2, -1, 0, 7, 2147483647));
  auto boolean = read_as<uint8_t>(kFixtures / "bool_4.npy", {4});
  ASSERT_TRUE(boolean.ok()) << boolean.status().to_string();
  EXPECT_THAT(*boolean, ElementsAre(1, 0, 0, 1));
  auto empty = read_as<float>(kFixtures / "f4_empty_0x4.npy", {0, 4});
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_TRUE(empty->empty());
}

TEST_F(NpyTest, ByteSwapsBigEndianFiles) {
  auto big = read_as<float>(kFixtures / "f4_big_endian_2x3.npy", {2, 3});
  ASSERT_TRUE(big.ok()) << big.status().to_string();
  EXPECT_EQ(*big, kF4);
}

TEST_F(NpyTest, RefusesWideDtypesWithTheConversionToApply) {
  auto f8 = read_as<float>(kFixtures / "f8_3.npy", {3});
  ASSERT_FALSE(f8.ok());
  EXPECT_THAT(f8.status().message(), HasSubstr("f8_3.npy"));
  EXPECT_THAT(f8.status().message(), HasSubstr("float64"));
  EXPECT_THAT(f8.status().message(), HasSubstr("astype(np.float32)"));
  auto i8 = read_as<int32_t>(kFixtures / "i8_3.npy", {3});
  ASSERT_FALSE(i8.ok());
  EXPECT_THAT(i8.status().message(), HasSubstr("int64"));
  EXPECT_THAT(i8.status().message(), HasSubstr("astype(np.int32)"));
}

TEST_F(NpyTest, RejectsTheWrongSupportedDtype) {
  auto as_int = read_as<int32_t>(kFixtures / "f4_2x3.npy", {2, 3});
  ASSERT_FALSE(as_int.ok());
  EXPECT_EQ(as_int.status().code(), ErrorCode::invalid_input);
  EXPECT_THAT(as_int.status().message(), HasSubstr("dtype is float32 but int32 (<i4) is required"));
}

TEST_F(NpyTest, RejectsShapeMismatchNamingBothShapes) {
  auto transposed = read_as<float>(kFixtures / "f4_2x3.npy", {3, 2});
  ASSERT_FALSE(transposed.ok());
  EXPECT_EQ(transposed.status().code(), ErrorCode::shape_mismatch);
  EXPECT_THAT(transposed.status().message(), HasSubstr("shape is (2, 3) but (3, 2) is required"));
  auto flat = read_as<float>(kFixtures / "f4_2x3.npy", {6});
  ASSERT_FALSE(flat.ok());
  EXPECT_THAT(flat.status().message(), HasSubstr("(6,)"));
  auto wildcard = read_as<float>(kFixtures / "f4_2x3.npy", {kAnyDim, 3});
  EXPECT_TRUE(wildcard.ok()) << wildcard.status().to_string();
}

TEST_F(NpyTest, RejectsFortranOrder) {
  auto fortran = read(kFixtures / "f4_fortran_2x3.npy");
  ASSERT_FALSE(fortran.ok());
  EXPECT_THAT(fortran.status().message(), HasSubstr("Fortran order"));
}

TEST_F(NpyTest, RejectsTruncatedData) {
  auto bytes = slurp(kFixtures / "f4_2x3.npy");
  bytes.resize(bytes.size() - 3);
  auto truncated = read(spit("short.npy", bytes));
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("short.npy"));
  EXPECT_THAT(truncated.status().message(), HasSubstr("truncated: shape (2, 3) of float32 needs 24 data bytes but only 21"));
}

TEST_F(NpyTest, RejectsShapesWhoseByteCountWouldOverflow) {
  const auto bytes = slurp(kFixtures / "f4_2x3.npy");
  std::string header(bytes.begin() + 10, bytes.begin() + 10 + bytes[8]);
  const std::string huge = "(1099511627776, 1099511627776)";  // 2**40 squared wraps a 64-bit byte count
  header.replace(header.find("(2, 3)"), 6, huge);
  header.erase(header.size() - 1 - (huge.size() - 6), huge.size() - 6);  // keep the padded length
  auto damaged = bytes;
  std::copy(header.begin(), header.end(), damaged.begin() + 10);
  auto result = read(spit("huge.npy", damaged));
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("needs more data bytes than the 24 present"));
}

TEST_F(NpyTest, RejectsTruncatedHeader) {
  auto bytes = slurp(kFixtures / "f4_2x3.npy");
  bytes.resize(40);
  auto truncated = read(spit("header.npy", bytes));
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("truncated: header declares"));
}

TEST_F(NpyTest, RejectsTrailingBytes) {
  auto bytes = slurp(kFixtures / "f4_2x3.npy");
  bytes.push_back(0);
  auto trailing = read(spit("long.npy", bytes));
  ASSERT_FALSE(trailing.ok());
  EXPECT_THAT(trailing.status().message(), HasSubstr("1 unexpected trailing bytes"));
}

TEST_F(NpyTest, RejectsBadMagicAndVersion) {
  auto bytes = slurp(kFixtures / "f4_2x3.npy");
  auto no_magic = bytes;
  no_magic[1] = 'X';
  auto magic = read(spit("magic.npy", no_magic));
  ASSERT_FALSE(magic.ok());
  EXPECT_THAT(magic.status().message(), HasSubstr("not a .npy file"));
  auto future = bytes;
  future[6] = 9;
  auto version = read(spit("version.npy", future));
  ASSERT_FALSE(version.ok());
  EXPECT_THAT(version.status().message(), HasSubstr("version 9.0 is not supported"));
  auto tiny = read(spit("tiny.npy", {0x93, 'N'}));
  ASSERT_FALSE(tiny.ok());
}

TEST_F(NpyTest, RejectsMalformedHeaders) {
  const auto bytes = slurp(kFixtures / "f4_2x3.npy");
  const std::string original(bytes.begin() + 10, bytes.begin() + 10 + bytes[8]);
  // Same length each time so the header length field stays right.
  const std::vector<std::pair<std::string, std::string>> damage = {
      {"'shape': (2, 3)", "'shape': [2, 3]"},          // a list, not a tuple
      {"'descr'", "'dtype'"},                          // unknown key
      {"False", "Fals!"},                              // not a bool
      {"(2, 3)", "(2; 3)"},                            // bad separator
  };
  for (const auto& [from, to] : damage) {
    std::string header = original;
    header.replace(header.find(from), from.size(), to);
    auto damaged = bytes;
    std::copy(header.begin(), header.end(), damaged.begin() + 10);
    auto result = read(spit("damaged.npy", damaged));
    ASSERT_FALSE(result.ok()) << to;
    EXPECT_THAT(result.status().message(), HasSubstr("malformed header")) << to;
  }
  std::string header = original;
  header.replace(header.find("'<f4'"), 5, "'<c8'");
  auto complex = bytes;
  std::copy(header.begin(), header.end(), complex.begin() + 10);
  auto result = read(spit("complex.npy", complex));
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("dtype '<c8' is not supported"));
}

TEST_F(NpyTest, MissingFileIsAnIoError) {
  auto missing = read(dir_ / "absent.npy");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::io_error);
  EXPECT_THAT(missing.status().message(), HasSubstr("absent.npy"));
}

TEST_F(NpyTest, WriteRejectsElementCountThatDoesNotFillTheShape) {
  Status s = write(dir_ / "bad.npy", std::vector<float>{1, 2, 3}, {2, 2});
  EXPECT_EQ(s.code(), ErrorCode::shape_mismatch);
  EXPECT_THAT(s.message(), HasSubstr("3 elements do not fill shape (2, 2)"));
}

}  // namespace
}  // namespace multibox::npy
