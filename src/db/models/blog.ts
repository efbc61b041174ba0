import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from 'sequelize'
import { DISPLAY_NAME_RULE } from '../../accounts/fields'
import { FIELD_RULES, IMAGE_ALT_RULE } from '../../posts/fields'

export class BlogModel extends Model<InferAttributes<BlogModel>, InferCreationAttributes<BlogModel>> {
  declare id: CreationOptional<number>
  declare title: string
  declare author: string
  declare content: string
  declare image_loc: string | null
  declare thumb_loc: CreationOptional<string | null>
  declare image_width: CreationOptional<number | null>
  declare image_height: CreationOptional<number | null>
  declare thumb_width: CreationOptional<number | null>
  declare thumb_height: CreationOptional<number | null>
  declare image_alt: CreationOptional<string | null>
  declare published_dt: CreationOptional<Date>
  declare user_id: number | null
  declare modified_dt: CreationOptional<Date>
}

/** Binds the model to one Sequelize instance (one per app; tests build several apps). */
export function defineBlogModel(sequelize: Sequelize): typeof BlogModel {
  // A subclass per instance, so two apps in one process never share a model's connection.
  class Blog extends BlogModel {}
  Blog.init(
    {
      id: { type: DataTypes.INTEGER, autoIncrement: true, primaryKey: true },
      title: { type: DataTypes.STRING(FIELD_RULES.title.maxLength), allowNull: false },
      author: { type: DataTypes.STRING(DISPLAY_NAME_RULE.maxLength), allowNull: false },
      content: { type: DataTypes.TEXT, allowNull: false },
      image_loc: { type: DataTypes.STRING(255), allowNull: true },
      thumb_loc: { type: DataTypes.STRING(255), allowNull: true },
      image_width: { type: DataTypes.SMALLINT.UNSIGNED, allowNull: true },
      image_height: { type: DataTypes.SMALLINT.UNSIGNED, allowNull: true },
      thumb_width: { type: DataTypes.SMALLINT.UNSIGNED, allowNull: true },
      thumb_height: { type: DataTypes.SMALLINT.UNSIGNED, allowNull: true },
      image_alt: { type: DataTypes.STRING(IMAGE_ALT_RULE.maxLength), allowNull: true },
      published_dt: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      user_id: { type: DataTypes.INTEGER, allowNull: true },
      modified_dt: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW }
    },
    { sequelize, tableName: 'blog', modelName: 'Blog', timestamps: false }
  )
  return Blog
}
