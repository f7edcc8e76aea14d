/* libudev headers; apt: libudev-dev, pkg-config: libudev. */
#include <libudev.h>
