package tenant

import "github.com/grey-distributed/grey/greyerr"

func invalidPrice(field string, v float64) error {
	return greyerr.Invalid(field, "must be a price between 0 and 1e9 USD, got %g", v)
}
